"""TemporalPad1d: exact padded values for every mode, offline and streaming, and bad input."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from mlx_tcn import TemporalPad1d
from mlx_tcn.pad import CAUSAL_PADDING_MODES, PADDING_MODES, RING_MIN_VALUES

X = np.arange(1, 6, dtype=np.float32)  # one channel, values 1..5


def _pad(x: np.ndarray, **kwargs) -> np.ndarray:
    layer = TemporalPad1d(in_channels=x.shape[-1], **kwargs)
    return np.array(layer(mx.array(x)))


def test_causal_zeros_puts_everything_on_the_left():
    y = _pad(X[None, :, None], padding=3, causal=True)
    np.testing.assert_array_equal(y[0, :, 0], [0, 0, 0, 1, 2, 3, 4, 5])


def test_causal_replicate_repeats_the_first_frame():
    y = _pad(X[None, :, None], padding=2, causal=True, padding_mode="replicate")
    np.testing.assert_array_equal(y[0, :, 0], [1, 1, 1, 2, 3, 4, 5])


def test_causal_buffer_value_fills_the_past():
    y = _pad(X[None, :, None], padding=2, causal=True, buffer=-2.5)
    np.testing.assert_array_equal(y[0, :, 0], [-2.5, -2.5, 1, 2, 3, 4, 5])


def test_non_causal_buffer_value_fills_only_the_left():
    y = _pad(X[None, :, None], padding=3, causal=False, buffer=7.0)
    np.testing.assert_array_equal(y[0, :, 0], [7, 1, 2, 3, 4, 5, 0, 0])


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("zeros", [0, 1, 2, 3, 4, 5, 0, 0]),
        ("reflect", [2, 1, 2, 3, 4, 5, 4, 3]),
        ("replicate", [1, 1, 2, 3, 4, 5, 5, 5]),
        ("circular", [5, 1, 2, 3, 4, 5, 1, 2]),
    ],
)
def test_non_causal_modes_split_like_same_padding(mode, expected):
    # padding 3: 3 // 2 = 1 frame on the left, 2 on the right (PyTorch's 'same' rule)
    y = _pad(X[None, :, None], padding=3, causal=False, padding_mode=mode)
    np.testing.assert_array_equal(y[0, :, 0], expected)


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize("padding", [0, 1, 2, 4, 5])
def test_non_causal_matches_torch_pad_on_the_transposed_layout(mode, padding, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    y = _pad(x, padding=padding, causal=False, padding_mode=mode)
    left = padding // 2
    torch_mode = "constant" if mode == "zeros" else mode
    ref = torch.nn.functional.pad(
        torch.from_numpy(x).transpose(1, 2), (left, padding - left), mode=torch_mode
    )
    np.testing.assert_array_equal(y, ref.transpose(1, 2).numpy())


@pytest.mark.parametrize("mode", CAUSAL_PADDING_MODES)
def test_causal_matches_torch_left_pad(mode, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    y = _pad(x, padding=4, causal=True, padding_mode=mode)
    torch_mode = "constant" if mode == "zeros" else mode
    ref = torch.nn.functional.pad(torch.from_numpy(x).transpose(1, 2), (4, 0), mode=torch_mode)
    np.testing.assert_array_equal(y, ref.transpose(1, 2).numpy())


def test_zero_padding_returns_the_input():
    x = mx.array(X[None, :, None])
    y = TemporalPad1d(0, 1, causal=True)(x)
    np.testing.assert_array_equal(np.array(y), X[None, :, None])


def test_left_right_split_attributes():
    p = TemporalPad1d(5, 2, causal=False)
    assert (p.left_padding, p.right_padding) == (2, 3)
    p = TemporalPad1d(5, 2, causal=True)
    assert (p.left_padding, p.right_padding) == (5, 0)


@pytest.mark.parametrize("mode", CAUSAL_PADDING_MODES)
def test_streaming_equals_offline(mode, rng):
    x = rng.standard_normal((2, 9, 3)).astype(np.float32)
    layer = TemporalPad1d(3, 3, causal=True, padding_mode=mode)
    offline = np.array(layer(mx.array(x)))
    state = layer.init_state(2)
    pieces = []
    for a, b in [(0, 1), (1, 3), (3, 9)]:
        padded, state = layer.stream(mx.array(x[:, a:b]), state)
        pieces.append(np.array(padded)[:, 3:])  # the frames of this chunk
        # the left part of each padded chunk is exactly the 3 frames before it
        np.testing.assert_array_equal(np.array(padded)[:, :3], offline[:, a : a + 3])
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1), x)


def test_stateful_call_keeps_the_last_frames_and_reset_forgets():
    layer = TemporalPad1d(2, 1, causal=True)
    first = layer(mx.array([[[1.0], [2.0], [3.0]]]), inference=True)
    np.testing.assert_array_equal(np.array(first)[0, :, 0], [0, 0, 1, 2, 3])
    second = layer(mx.array([[[4.0]]]), inference=True)
    np.testing.assert_array_equal(np.array(second)[0, :, 0], [2, 3, 4])
    layer.reset_buffer()
    third = layer(mx.array([[[4.0]]]), inference=True)
    np.testing.assert_array_equal(np.array(third)[0, :, 0], [0, 0, 4])


def test_streaming_state_is_not_a_parameter():
    layer = TemporalPad1d(2, 1, causal=True)
    layer(mx.ones((1, 3, 1)), inference=True)
    assert layer.parameters() == {}


def test_init_state_shape():
    pad = TemporalPad1d(4, 3, causal=True)
    # up to RING_MIN_VALUES values (batch x frames x channels): the frames in time order
    assert RING_MIN_VALUES == 8192
    state = pad.init_state(5)
    assert set(state) == {"buffer"} and state["buffer"].shape == (5, 4, 3)
    assert set(pad.init_state(682)) == {"buffer"}  # 682 * 4 * 3 = 8184
    # above it a ring of padding + 1 frames and, per row, the slot of the next one
    state = pad.init_state(683)
    assert state["buffer"].shape == (683, 5, 3)
    assert state["pos"].shape == (683, 1, 3) and state["pos"].dtype == mx.int32
    assert TemporalPad1d(0, 3, causal=True).init_state(2) == {}


# -- bad input ------------------------------------------------------------------------


def test_unknown_padding_mode():
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        TemporalPad1d(2, 1, padding_mode="mirror")


@pytest.mark.parametrize("mode", ["reflect", "circular"])
def test_causal_reflect_and_circular_are_rejected(mode):
    with pytest.raises(ValueError, match=f"padding_mode='{mode}' is not causal"):
        TemporalPad1d(2, 1, padding_mode=mode, causal=True)


def test_negative_padding():
    with pytest.raises(ValueError, match="padding must be >= 0, got -1"):
        TemporalPad1d(-1, 1)


def test_padding_must_be_an_int():
    with pytest.raises(TypeError, match="padding must be an int"):
        TemporalPad1d((1, 1), 1)


def test_in_channels_must_be_positive():
    with pytest.raises(ValueError, match="in_channels must be >= 1, got 0"):
        TemporalPad1d(1, 0)


def test_causal_must_be_a_bool():
    with pytest.raises(TypeError, match="causal must be a bool"):
        TemporalPad1d(1, 1, causal="yes")


def test_buffer_must_be_a_number():
    with pytest.raises(TypeError, match="buffer must be a float or None"):
        TemporalPad1d(1, 1, buffer="0")


def test_reflect_needs_a_longer_input():
    with pytest.raises(ValueError, match="reflect padding of 2 frames needs an input longer"):
        _pad(X[None, :2, None], padding=4, padding_mode="reflect")


def test_circular_needs_enough_steps():
    with pytest.raises(ValueError, match="circular padding of 3 frames needs at least"):
        _pad(X[None, :2, None], padding=6, padding_mode="circular")


def test_streaming_a_non_causal_pad():
    with pytest.raises(ValueError, match="streaming needs causal padding"):
        TemporalPad1d(2, 1, causal=False).init_state(1)
    with pytest.raises(ValueError, match="needs a causal layer"):
        TemporalPad1d(2, 1, causal=False)(mx.ones((1, 3, 1)), inference=True)


@pytest.mark.parametrize(
    ("shape", "match"),
    [((3, 1), r"must have shape \(batch, length, channels\)"), ((1, 3, 2), "has 2 channels")],
)
def test_wrong_input_shape(shape, match):
    with pytest.raises(ValueError, match=match):
        TemporalPad1d(2, 1)(mx.ones(shape))


def test_input_must_be_an_array():
    with pytest.raises(TypeError, match="x must be an mlx.core.array"):
        TemporalPad1d(2, 1)(np.ones((1, 3, 1)))


def test_stream_batch_mismatch():
    layer = TemporalPad1d(2, 1, causal=True)
    state = layer.init_state(2)
    with pytest.raises(ValueError, match="batch size 1 but the stream's state has 2"):
        layer.stream(mx.ones((1, 3, 1)), state)
