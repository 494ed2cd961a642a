"""Small offline eval-mode forwards through ``mx.compile``, cached per input shape.

A small model's forward (a few channels, one short sequence) does little arithmetic per MLX
operation: its time goes to building the graph in Python (about 2 us per operation) and to
running many small operations. In eval mode the offline forward is a pure function of the
input and the model's arrays, so :class:`EvalCompiler` runs it through ``mx.compile``: after
the first trace a call skips the Python graph building and runs fused element-wise kernels.
Measured on 2 x86 cores (docs/performance_models.md, "Compiled eval forwards for small
models"): 0.6-0.8 of the eager time for 4x16 models at batch 1 (256 and 4096 steps), about
0.95 for a 6x64 one; at 128K values per layer (batch x length x channels) 0.9-1.05, and
on the grid's large models a compiled forward was 1.05-1.17x slower, so those stay eager.

When a forward is compiled, and when not:

* only with the model in eval mode, on the CPU, with at most :data:`MAX_VALUES` values in
  its widest layer's activation, and when every layer and activation is mlx-tcn's or MLX's
  own (a user's could do something in Python that a compiled call would skip);
* an input signature (shapes and dtypes) is compiled the second time it comes (the trace
  costs about one to six eager calls: 3-8 ms for 4- to 12-block models), so inputs of
  ever-changing lengths stay eager; at most :data:`MAX_SIGNATURES` are compiled per model;
* the trace follows the model's Python structure, so it is keyed by a fingerprint of the
  module tree: each module's identity, type and plain attributes (training mode, activation
  functions, ...). Replacing a layer or an activation, or changing one submodule's mode,
  makes a new compiled function. The arrays themselves are the compiled function's inputs:
  new weights, updated in place or not, are always read. The trace runs on a copy of the
  module tree, so the model never holds a traced array; a forward that fails to trace runs
  eagerly from then on.

``model.compile_eval = False`` turns it off for one model.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from .parametrizations import copy_tree

__all__ = ["MAX_SIGNATURES", "MAX_VALUES", "EvalCompiler"]

# The widest layer's activation (batch x length x channels) of a compiled forward, at most.
MAX_VALUES = 1 << 16
# Input signatures compiled per model; more distinct shapes run eagerly.
MAX_SIGNATURES = 16
# Signatures counted before the count starts over (shapes that never repeat).
_MAX_SEEN = 256
_OWN_PACKAGES = ("mlx_tcn.", "mlx.")

# forward(model, x, e) -> y: the model's eager offline forward
Forward = Callable[[Any, mx.array, mx.array | None], mx.array]


# Where an array of the model lives: (container, key); the container is a module or a
# list or dict inside one.
Slot = tuple[Any, Any]


def scan(model: nn.Module, slots: list[Slot] | None = None) -> tuple[list[Any], list[mx.array]]:
    """``(key, arrays)`` of ``model``: what a trace of its forward depends on besides its
    arrays (each module's identity, type, plain attributes and entries), and every array
    in its tree, in an order fixed by the key. With ``slots``, also where each array lives.

    Run on every compiled call (26 us for a 4-block model, 70 us for 12 blocks, on 2 x86
    cores), so it is a flat loop rather than :func:`mlx.utils.tree_flatten`.
    """
    key: list[Any] = []
    arrays: list[mx.array] = []
    stack: list[nn.Module] = [model]

    def nested(container: Any, items: Any) -> None:
        for k, v in items:
            if isinstance(v, mx.array):
                arrays.append(v)
                if slots is not None:
                    slots.append((container, k))
            elif isinstance(v, nn.Module):
                stack.append(v)
            elif isinstance(v, dict):
                key.append((k, id(v)))
                nested(v, v.items())
            elif isinstance(v, list):
                key.append((k, id(v)))
                nested(v, enumerate(v))
            else:
                key.append((k, id(v)))

    while stack:
        m = stack.pop()
        key.append((id(m), type(m), tuple(vars(m)), tuple(map(id, vars(m).values()))))
        key.extend(m)
        nested(m, m.items())
    return key, arrays


def _own(model: nn.Module) -> bool:
    """Every module in ``model``, and every function one holds (its activations), is
    mlx-tcn's or MLX's own: a user's could have Python side effects (a print, a counter)
    that a compiled call would run only once, while tracing."""

    def ours(origin: object) -> bool:
        return str(origin).startswith(_OWN_PACKAGES)

    for _, m in model.named_modules():
        if not ours(type(m).__module__):
            return False
        for value in vars(m).values():
            if callable(value) and not isinstance(value, (nn.Module, type)):
                if not ours(getattr(value, "__module__", None) or type(value).__module__):
                    return False
    return True


class EvalCompiler:
    """The compiled eval forwards of one model (see the module docstring).

    ``forward(model, x, e)`` is the model's eager offline forward; :meth:`__call__`
    returns its result, computed compiled or eagerly. The model is held weakly (the cache
    lives on it), and the compiled function holds neither: nothing here keeps a model
    alive.
    """

    def __init__(self, model: nn.Module, forward: Forward) -> None:
        self._model = weakref.ref(model)
        self._forward = forward
        self._key: list[Any] | None = None
        self._own = False
        self._compiled: Callable[..., Any] | None = None
        self._seen: dict[tuple[Any, ...], int] = {}
        self._signatures: set[tuple[Any, ...]] = set()

    def serves(self, model: nn.Module) -> bool:
        """Is this ``model``'s cache? A copy of a model (``copy.copy``, which shares its
        attributes) must make its own, or it would run the original's weights."""
        return self._model() is model

    def __call__(self, x: mx.array, e: mx.array | None) -> mx.array:
        model = self._model()
        key, arrays = scan(model)
        if key != self._key:
            self._key, self._own, self._compiled = key, _own(model), None
            self._seen.clear()
            self._signatures.clear()
        signature = (x.shape, x.dtype, None if e is None else (e.shape, e.dtype))
        if not self._own or not self._wanted(signature):
            return self._forward(model, x, e)
        if self._compiled is None:
            self._compiled = self._make()
        try:
            return self._compiled(x, *([] if e is None else [e]), *arrays)
        except Exception:  # a forward that MLX cannot trace runs eagerly
            # Eager from now on for this structure: a real error in the input or the model
            # raises again there, from the code that a user can read.
            self._own = False
            return self._forward(model, x, e)

    def _wanted(self, signature: tuple[Any, ...]) -> bool:
        """Compile ``signature`` now? Yes if it was compiled before, or is seen for the
        second time with room for another compiled signature."""
        if signature in self._signatures:
            return True
        if len(self._seen) >= _MAX_SEEN:
            self._seen.clear()
        count = self._seen.get(signature, 0) + 1
        self._seen[signature] = count
        if count < 2 or len(self._signatures) >= MAX_SIGNATURES:
            return False
        self._signatures.add(signature)
        return True

    def _make(self) -> Callable[..., Any]:
        me = weakref.ref(self)

        def traced(x: mx.array, *rest: mx.array) -> mx.array:
            # Runs only while MLX traces, on a copy of the model's tree whose arrays are
            # the traced inputs: the compiled graph reads them from its arguments, and the
            # model itself never holds a traced array (another thread may be using it).
            compiler = me()
            model = copy_tree(compiler._model())
            slots: list[Slot] = []
            scan(model, slots)
            e = rest[0] if len(rest) > len(slots) else None
            for (container, k), a in zip(slots, rest[len(rest) - len(slots) :], strict=True):
                container[k] = a
            return compiler._forward(model, x, e)

        return mx.compile(traced, inputs=mx.random.state, outputs=mx.random.state)
