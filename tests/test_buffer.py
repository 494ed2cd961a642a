"""BufferIO: the iterator-style exchange of streaming states."""

from __future__ import annotations

import pytest

from mlx_tcn import BufferIO


def test_fresh_bufferio_hands_out_none_and_records_internal_buffers():
    io = BufferIO()
    assert io.next_in_buffer() is None
    assert next(io) is None
    io.append_internal_buffer("s0")
    io.append_internal_buffer("s1")
    assert io.internal_buffers == ["s0", "s1"]


def test_in_buffers_are_read_in_order():
    io = BufferIO(in_buffers=["a", "b"])
    assert io.in_buffers_length == 2
    assert io.next_in_buffer() == "a"
    assert next(io) == "b"


def test_running_out_of_in_buffers_is_a_clear_error():
    io = BufferIO(in_buffers=["a"])
    io.next_in_buffer()
    with pytest.raises(ValueError, match="BufferIO ran out of input buffers: it holds 1"):
        io.next_in_buffer()


def test_step_turns_out_buffers_into_in_buffers():
    io = BufferIO()
    io.next_in_buffer()
    io.append_internal_buffer("fresh")
    io.append_out_buffer("new")
    io.step()
    assert io.in_buffers_length == 1
    assert io.out_buffers == [] and io.internal_buffers == []
    assert io.next_in_buffer() == "new"
    io.append_out_buffer("newer")
    io.step()
    assert io.next_in_buffer() == "newer"


def test_step_with_the_wrong_number_of_out_buffers():
    io = BufferIO(in_buffers=["a", "b"])
    io.append_out_buffer("x")
    with pytest.raises(ValueError, match="1 output buffers were written but 2 input buffers"):
        io.step()


def test_iter_returns_itself_and_accepts_any_iterable():
    io = BufferIO(in_buffers=(s for s in ["p", "q"]))
    assert iter(io) is io
    assert [next(io), next(io)] == ["p", "q"]


def test_repr():
    io = BufferIO(["a"])
    io.append_out_buffer("b")
    assert repr(io) == "BufferIO(in_buffers=1, out_buffers=1)"
