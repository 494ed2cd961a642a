"""Fused elementwise epilogues of a block: one pass over the output instead of two to four.

A block's offline forward, written op by op, makes six elementwise passes over arrays the
size of its output: the two convolutions' bias adds and activations, the residual add and
the final activation (and two dropout masks when training). On the CPU each pass streams
the whole array through memory, and at 128 channels and 16 x 1,024 steps they cost about as
much as a third of the convolutions' GEMMs. ``mx.compile`` fuses a chain of elementwise
operations into one kernel, so here each chain is one compiled function:

* :func:`bias_act`: ``dropout(act(y + bias))`` after a convolution;
* :func:`residual_act`: ``final(branch + residual)``, or with ``y``/``bias`` given, the second
  convolution's epilogue and the residual in one pass when the branch itself is not needed.

Only the named activations of :data:`~mlx_tcn.activations.ACTIVATIONS` and the GLU are fused:
a user's callable or module (which may hold parameters, such as a PReLU) is applied as it is.
Results are those of the unfused operations (same operations, same order). When no C++
compiler is available MLX runs the same operations unfused, so nothing here needs one.

Compiled functions are traced per default stream: a compiled graph runs on the stream it was
traced on, and :mod:`mlx_tcn.parallel` runs parts of a batch on several CPU streams at once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import mlx.core as mx

from .activations import ACTIVATIONS, Activation, glu

__all__ = ["activation_name", "bias_act", "residual_act"]

_NAMES = {id(fn): name for name, fn in ACTIVATIONS.items()} | {id(glu): "glu"}


def activation_name(act: Activation) -> str | None:
    """The registered name of ``act`` when it is one of the fusable functions, else ``None``."""
    return _NAMES.get(id(act))


def _by_name(name: str) -> Activation:
    return glu if name == "glu" else ACTIVATIONS[name]


@cache
def _bias_act(name: str, with_mask: bool, stream: mx.Stream) -> Callable[..., mx.array]:
    act = _by_name(name)
    if with_mask:
        return mx.compile(lambda y, b, keep, scale: mx.where(keep, act(y + b) * scale, 0))
    return mx.compile(lambda y, b: act(y + b))


@cache
def _residual_act(name: str, stream: mx.Stream) -> Callable[..., mx.array]:
    final = _by_name(name)
    return mx.compile(lambda out, res: final(out + res))


@cache
def _bias_act_residual(name: str, final_name: str, stream: mx.Stream) -> Callable[..., mx.array]:
    act, final = _by_name(name), _by_name(final_name)
    return mx.compile(lambda y, b, res: final(act(y + b) + res))


def _stream() -> mx.Stream:
    return mx.default_stream(mx.default_device())


def bias_act(
    y: mx.array,
    bias: mx.array | None,
    act: Activation,
    keep: mx.array | None = None,
    keep_prob: float = 1.0,
) -> mx.array:
    """``act(y + bias)``, then inverted dropout with the mask ``keep`` when one is given.

    Fused into one pass when ``act`` is a named activation; ``bias=None`` adds nothing.
    """
    name = activation_name(act)
    if bias is None or name is None:
        out = act(y if bias is None else y + bias)
        return out if keep is None else mx.where(keep, out * (1.0 / keep_prob), 0)
    if keep is None:
        return _bias_act(name, False, _stream())(y, bias)
    scale = mx.array(1.0 / keep_prob, dtype=y.dtype)
    return _bias_act(name, True, _stream())(y, bias, keep, scale)


def residual_act(
    branch: mx.array | None,
    res: mx.array,
    final: Activation,
    *,
    y: mx.array | None = None,
    bias: mx.array | None = None,
    act: Activation | None = None,
) -> mx.array:
    """``final(branch + res)``; or, given ``y``, ``bias`` and ``act`` instead of ``branch``,
    ``final(act(y + bias) + res)`` in one pass (the branch is then never written out)."""
    final_name = activation_name(final)
    if branch is not None:
        if final_name is None:
            return final(branch + res)
        return _residual_act(final_name, _stream())(branch, res)
    name = None if act is None else activation_name(act)
    if final_name is None or name is None or bias is None:
        return residual_act(bias_act(y, bias, act), res, final)
    return _bias_act_residual(name, final_name, _stream())(y, bias, res)
