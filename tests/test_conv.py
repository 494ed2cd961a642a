"""TemporalConv1d and TemporalConvTransposed1d: hand-computed values, parity with torch's
conv1d / conv_transpose1d, output lengths, causality and bad input."""

from __future__ import annotations

import itertools

import mlx.core as mx
import numpy as np
import pytest

from mlx_tcn import TemporalConv1d, TemporalConvTransposed1d

X = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0], dtype=np.float32)  # powers of 2: sums are unique


def _ones_conv(kernel_size: int, causal: bool, dilation: int = 1, bias: float = 0.5, **kw):
    conv = TemporalConv1d(1, 1, kernel_size, dilation=dilation, causal=causal, **kw)
    conv.weight = mx.ones_like(conv.weight)
    conv.bias = mx.full((1,), bias)
    return conv


def _run(layer, x: np.ndarray) -> np.ndarray:
    return np.array(layer(mx.array(x)))


def _seq(x: np.ndarray) -> np.ndarray:
    return x[None, :, None]


# -- hand-computed values with all-ones weights ------------------------------------------


def test_causal_kernel3_sums_the_current_and_two_previous_steps():
    y = _run(_ones_conv(3, causal=True), _seq(X))[0, :, 0]
    np.testing.assert_array_equal(y, [1.5, 3.5, 7.5, 14.5, 28.5, 56.5])


def test_causal_dilation2_skips_every_other_step():
    y = _run(_ones_conv(3, causal=True, dilation=2, bias=0.0), _seq(X))[0, :, 0]
    # x_t + x_{t-2} + x_{t-4}
    np.testing.assert_array_equal(y, [1, 2, 5, 10, 21, 42])


def test_non_causal_kernel3_is_centred():
    y = _run(_ones_conv(3, causal=False, bias=0.0), _seq(X))[0, :, 0]
    np.testing.assert_array_equal(y, [3, 7, 14, 28, 56, 48])


def test_non_causal_even_kernel_pads_one_left_two_right():
    y = _run(_ones_conv(4, causal=False, bias=0.0), _seq(X))[0, :, 0]
    # x_{t-1} + x_t + x_{t+1} + x_{t+2}
    np.testing.assert_array_equal(y, [7, 15, 30, 60, 56, 48])


def test_kernel_size_one_is_a_pointwise_map():
    y = _run(_ones_conv(1, causal=True, bias=1.0), _seq(X))[0, :, 0]
    np.testing.assert_array_equal(y, X + 1)


def test_stride2_causal():
    y = _run(_ones_conv(2, causal=True, bias=0.0, stride=2), _seq(X))[0, :, 0]
    # padded [0, 1, 2, 4, 8, 16, 32], windows at 0, 2, 4
    np.testing.assert_array_equal(y, [1, 6, 24])


def test_groups_keep_channels_apart():
    conv = TemporalConv1d(2, 2, 2, groups=2, causal=True)
    assert conv.weight.shape == (2, 2, 1)
    conv.weight = mx.array([[[1.0], [1.0]], [[10.0], [0.0]]])  # ch0: x_{t-1}+x_t, ch1: 10 x_{t-1}
    conv.bias = mx.zeros((2,))
    x = np.stack([X, -X], axis=-1)[None]
    y = _run(conv, x)[0]
    np.testing.assert_array_equal(y[:, 0], [1, 3, 6, 12, 24, 48])
    np.testing.assert_array_equal(y[:, 1], [0, -10, -20, -40, -80, -160])


def test_weight_layout_and_default_init_bound():
    conv = TemporalConv1d(6, 4, 3, groups=2)
    assert conv.weight.shape == (4, 3, 3)
    assert conv.bias.shape == (4,)
    bound = 1 / np.sqrt(3 * 3)
    assert float(mx.abs(conv.weight).max()) <= bound
    assert "bias" not in TemporalConv1d(2, 2, 3, bias=False)


@pytest.mark.parametrize(("k", "d"), [(1, 1), (2, 1), (3, 2), (5, 3)])
def test_receptive_field(k, d):
    assert TemporalConv1d(1, 1, k, dilation=d).receptive_field == (k - 1) * d + 1


# -- parity with torch -------------------------------------------------------------------

GRID = [
    (causal, k, d, stride, groups)
    for causal, k in itertools.product([True, False], [1, 2, 3, 4])
    for d, stride, groups in [(1, 1, 1), (2, 2, 1), (3, 1, 2), (2, 2, 2)]
]  # causal, kernel, dilation, stride, groups


@pytest.mark.parametrize(("causal", "k", "d", "stride", "groups"), GRID)
def test_matches_torch_conv1d(causal, k, d, stride, groups, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 11, 4)).astype(np.float32)
    conv = TemporalConv1d(4, 6, k, stride=stride, dilation=d, groups=groups, causal=causal)
    y = _run(conv, x)
    pad = (k - 1) * d
    left = pad if causal else pad // 2
    xt = torch.nn.functional.pad(torch.from_numpy(x).transpose(1, 2), (left, pad - left))
    w = torch.from_numpy(np.array(conv.weight)).permute(0, 2, 1)  # (out, in/groups, k)
    ref = torch.nn.functional.conv1d(
        xt, w, torch.from_numpy(np.array(conv.bias)), stride=stride, dilation=d, groups=groups
    )
    assert y.shape == (2, -(-11 // stride), 6)
    np.testing.assert_allclose(y, ref.transpose(1, 2).numpy(), atol=1e-5)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("k", [2, 3, 4])
def test_non_causal_padding_modes_match_torch_same_padding(mode, k, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((1, 7, 3)).astype(np.float32)
    conv = TemporalConv1d(3, 2, k, dilation=2, causal=False, padding_mode=mode)
    ref = torch.nn.Conv1d(3, 2, k, dilation=2, padding="same", padding_mode=mode)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(np.array(conv.weight)).permute(0, 2, 1))
        ref.bias.copy_(torch.from_numpy(np.array(conv.bias)))
        expected = ref(torch.from_numpy(x).transpose(1, 2)).transpose(1, 2).numpy()
    np.testing.assert_allclose(_run(conv, x), expected, atol=1e-5)


def test_matches_pytorch_tcn_temporal_conv1d(rng):
    torch = pytest.importorskip("torch")
    ptcn = pytest.importorskip("pytorch_tcn")
    x = rng.standard_normal((2, 9, 3)).astype(np.float32)
    for causal in (True, False):
        conv = TemporalConv1d(3, 5, 4, dilation=2, causal=causal)
        ref = ptcn.TemporalConv1d(3, 5, 4, dilation=2, causal=causal)
        with torch.no_grad():
            ref.weight.copy_(torch.from_numpy(np.array(conv.weight)).permute(0, 2, 1))
            ref.bias.copy_(torch.from_numpy(np.array(conv.bias)))
            expected = ref(torch.from_numpy(x).transpose(1, 2)).transpose(1, 2).numpy()
        np.testing.assert_allclose(_run(conv, x), expected, atol=1e-5)


# -- causality ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "d", "mode"), [(2, 1, "zeros"), (3, 2, "zeros"), (4, 1, "replicate")]
)
def test_causal_conv_never_sees_the_future(k, d, mode, rng):
    conv = TemporalConv1d(2, 3, k, dilation=d, causal=True, padding_mode=mode)
    x = rng.standard_normal((1, 12, 2)).astype(np.float32)
    base = _run(conv, x)
    for t in (0, 5, 11):
        x2 = x.copy()
        x2[:, t] += 1.0
        y = _run(conv, x2)
        np.testing.assert_array_equal(y[:, :t], base[:, :t])
        assert np.abs(y[:, t] - base[:, t]).max() > 0


# -- transposed convolution --------------------------------------------------------------


def _ones_transposed(k: int, s: int, causal: bool) -> TemporalConvTransposed1d:
    t = TemporalConvTransposed1d(1, 1, k, stride=s, causal=causal)
    t.weight = mx.ones_like(t.weight)
    t.bias = mx.zeros((1,))
    return t


def test_transposed_causal_hand_computed():
    # full transposed conv of [1, 2, 3], k=4, s=2: [1, 1, 3, 3, 5, 5, 3, 3]; causal keeps 6
    y = _run(_ones_transposed(4, 2, causal=True), _seq(np.array([1.0, 2.0, 3.0], np.float32)))
    np.testing.assert_array_equal(y[0, :, 0], [1, 1, 3, 3, 5, 5])


def test_transposed_non_causal_hand_computed():
    # drops (k - s) // 2 = 1 sample on the left
    y = _run(_ones_transposed(4, 2, causal=False), _seq(np.array([1.0, 2.0, 3.0], np.float32)))
    np.testing.assert_array_equal(y[0, :, 0], [1, 3, 3, 5, 5, 3])


def test_transposed_kernel_shorter_than_stride_fills_zeros():
    y = _run(_ones_transposed(1, 3, causal=True), _seq(np.array([1.0, 2.0], np.float32)))
    np.testing.assert_array_equal(y[0, :, 0], [1, 0, 0, 2, 0, 0])


TRANSPOSED_GRID = [
    (k, s, d, causal)
    for k, s, d in [(4, 2, 1), (3, 2, 1), (5, 3, 2), (1, 3, 1), (2, 4, 1), (7, 2, 1), (6, 1, 1)]
    for causal in (True, False)
]


@pytest.mark.parametrize(("k", "s", "d", "causal"), TRANSPOSED_GRID)
def test_transposed_matches_torch_with_documented_crop(k, s, d, causal, rng):
    torch = pytest.importorskip("torch")
    length = 6
    x = rng.standard_normal((2, length, 3)).astype(np.float32)
    layer = TemporalConvTransposed1d(3, 2, k, stride=s, dilation=d, causal=causal)
    y = _run(layer, x)
    assert y.shape == (2, length * s, 2)
    w = torch.from_numpy(np.array(layer.weight)).permute(2, 0, 1)  # torch: (in, out, k)
    full = torch.nn.functional.conv_transpose1d(
        torch.from_numpy(x).transpose(1, 2), w, stride=s, dilation=d
    )
    full = full.transpose(1, 2).numpy()
    span = d * (k - 1) + 1
    crop = 0 if causal else max(span - s, 0) // 2
    expected = np.zeros((2, length * s, 2), np.float32)
    kept = full[:, crop : crop + length * s]
    expected[:, : kept.shape[1]] = kept
    expected += np.array(layer.bias)
    np.testing.assert_allclose(y, expected, atol=1e-5)


def test_transposed_matches_pytorch_tcn_non_causal(rng):
    torch = pytest.importorskip("torch")
    ptcn = pytest.importorskip("pytorch_tcn")
    x = rng.standard_normal((1, 5, 3)).astype(np.float32)
    layer = TemporalConvTransposed1d(3, 2, 4, stride=2, causal=False)
    ref = ptcn.TemporalConvTranspose1d(3, 2, 4, stride=2, causal=False)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(np.array(layer.weight)).permute(2, 0, 1))
        ref.bias.copy_(torch.from_numpy(np.array(layer.bias)))
        expected = ref(torch.from_numpy(x).transpose(1, 2)).transpose(1, 2).numpy()
    np.testing.assert_allclose(_run(layer, x), expected, atol=1e-5)


@pytest.mark.parametrize(("k", "s"), [(4, 2), (3, 3), (5, 2)])
def test_transposed_causal_output_depends_only_on_inputs_up_to_t_over_stride(k, s, rng):
    layer = TemporalConvTransposed1d(2, 2, k, stride=s, causal=True)
    x = rng.standard_normal((1, 6, 2)).astype(np.float32)
    base = _run(layer, x)
    for i in (0, 3, 5):
        x2 = x.copy()
        x2[:, i] += 1.0
        y = _run(layer, x2)
        np.testing.assert_array_equal(y[:, : i * s], base[:, : i * s])
        assert np.abs(y[:, i * s] - base[:, i * s]).max() > 0


@pytest.mark.parametrize("length", [1, 2, 7])
@pytest.mark.parametrize("causal", [True, False])
def test_transposed_output_length_is_length_times_stride(length, causal):
    layer = TemporalConvTransposed1d(2, 3, 5, stride=3, causal=causal)
    assert layer(mx.ones((2, length, 2))).shape == (2, length * 3, 3)


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"padding": 1}, ValueError, "padding must be 0"),
        ({"kernel_size": 0}, ValueError, "kernel_size must be >= 1, got 0"),
        ({"stride": 0}, ValueError, "stride must be >= 1, got 0"),
        ({"dilation": 0}, ValueError, "dilation must be >= 1, got 0"),
        ({"groups": 0}, ValueError, "groups must be >= 1, got 0"),
        ({"in_channels": 0}, ValueError, "in_channels must be >= 1, got 0"),
        ({"out_channels": -2}, ValueError, "out_channels must be >= 1, got -2"),
        ({"groups": 3}, ValueError, r"must be divisible by groups \(3\)"),
        ({"kernel_size": 2.0}, TypeError, "kernel_size must be an int"),
        ({"padding_mode": "mirror"}, ValueError, "padding_mode must be one of"),
        ({"padding_mode": "reflect"}, ValueError, "padding_mode='reflect' is not causal"),
        ({"bias": "yes"}, TypeError, "bias must be True or False, got 'yes'"),  # was accepted
    ],
)
def test_conv_validation(kwargs, error, match):
    args = {"in_channels": 4, "out_channels": 2, "kernel_size": 3, "causal": True} | kwargs
    with pytest.raises(error, match=match):
        TemporalConv1d(**args)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"padding": 1}, ValueError, "padding must be 0"),
        ({"output_padding": 1}, ValueError, "output_padding must be 0"),
        ({"groups": 2}, ValueError, "groups must be 1"),
        ({"stride": 0}, ValueError, "stride must be >= 1, got 0"),
        ({"dilation": 0}, ValueError, "dilation must be >= 1, got 0"),
        ({"kernel_size": 0}, ValueError, "kernel_size must be >= 1, got 0"),
        ({"padding_mode": "mirror"}, ValueError, "padding_mode must be one of"),
        ({"padding_mode": "replicate", "causal": False}, ValueError, "pads with zeros only"),
        # were accepted: a truthy string made the layer causal; True counted as one group
        ({"causal": "no"}, TypeError, "causal must be True or False, got 'no'"),
        ({"groups": True}, TypeError, "groups must be an int, got True"),
    ],
)
def test_transposed_validation(kwargs, error, match):
    args = {"in_channels": 2, "out_channels": 2, "kernel_size": 4, "stride": 2} | kwargs
    with pytest.raises(error, match=match):
        TemporalConvTransposed1d(**args)


@pytest.mark.parametrize(
    "layer",
    [lambda: TemporalConv1d(2, 2, 3, causal=True), lambda: TemporalConvTransposed1d(2, 2, 4, 2)],
)
def test_inference_must_be_a_bool(layer):
    # inference="no" streamed (a truthy string) instead of refusing.
    with pytest.raises(TypeError, match="inference must be True or False, got 'no'"):
        layer()(mx.ones((1, 5, 2)), inference="no")


def test_wrong_input_channels():
    with pytest.raises(ValueError, match="x has 3 channels .* but 4 are expected"):
        TemporalConv1d(4, 2, 3)(mx.ones((1, 5, 3)))
    with pytest.raises(ValueError, match="x has 3 channels"):
        TemporalConvTransposed1d(4, 2, 4, stride=2)(mx.ones((1, 5, 3)))


def test_wrong_input_rank():
    with pytest.raises(ValueError, match=r"must have shape \(batch, length, channels\)"):
        TemporalConv1d(4, 2, 3)(mx.ones((5, 4)))


def test_streaming_needs_stride_one_and_causal():
    with pytest.raises(ValueError, match="streaming supports stride 1 only"):
        TemporalConv1d(1, 1, 3, stride=2).init_state(1)
    with pytest.raises(ValueError, match="needs a causal layer"):
        TemporalConv1d(1, 1, 3, causal=False).stream(mx.ones((1, 2, 1)), {})
    with pytest.raises(ValueError, match="inference=True streams, which needs a causal layer"):
        TemporalConv1d(1, 1, 3, causal=False)(mx.ones((1, 2, 1)), inference=True)
