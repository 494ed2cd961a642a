"""``ModuleList``: a list of MLX modules with PyTorch's ``nn.ModuleList`` API.

MLX finds parameters by walking the attributes of a module that are arrays, dicts or lists
(an :class:`mlx.nn.Module` is itself a dict). A ``ModuleList`` *is* a Python ``list``, so MLX
walks it like any list: a ``ModuleList`` stored as ``self.network`` in a parent module yields
parameter names such as ``network.0.conv1.weight``, exactly the names pytorch-tcn's
``nn.ModuleList`` gives, which keeps checkpoint conversion a matter of renaming nothing.

On top of a plain list it checks that every item is an :class:`mlx.nn.Module` (or ``None``, the
placeholder pytorch-tcn uses for blocks without a skip projection), and slicing returns a
``ModuleList``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, SupportsIndex, overload

import mlx.nn as nn

__all__ = ["ModuleList"]


def _check_item(item: Any, where: str) -> nn.Module | None:
    if item is None or isinstance(item, nn.Module):
        return item
    raise TypeError(
        f"ModuleList items must be mlx.nn.Module or None; {where} got "
        f"{type(item).__name__}: {item!r}"
    )


def _check_items(items: Iterable[Any], where: str) -> list[nn.Module | None]:
    if isinstance(items, nn.Module) or not isinstance(items, Iterable):
        raise TypeError(
            f"{where} expects an iterable of modules, got {type(items).__name__}: {items!r}"
        )
    return [_check_item(item, f"{where} item {i}") for i, item in enumerate(items)]


class ModuleList(list):
    """A list of :class:`mlx.nn.Module` (or ``None``) that MLX treats as a list of children.

    Mirrors ``torch.nn.ModuleList``: build it from an iterable, then ``append``, ``extend``,
    ``insert``, index, slice (a slice is again a ``ModuleList``), assign items, iterate and take
    ``len``. Assign it to an attribute of an :class:`mlx.nn.Module` and its modules' parameters
    appear under ``<attribute>.<index>.<name>``, are trained by ``nn.value_and_grad`` /
    ``model.update`` and saved by ``save_weights``.

    Unlike ``torch.nn.ModuleList`` it is not a module itself: call ``parameters()`` on the
    parent module (or on an item). ``mlx.utils.tree_map`` rebuilds lists with their own type, so
    map over ``model.parameters()`` (plain dicts and lists), not over the module object itself.

    Args:
        modules: optional iterable of modules (or ``None`` placeholders).

    Raises:
        TypeError: if an item is neither an ``mlx.nn.Module`` nor ``None``.
    """

    def __init__(self, modules: Iterable[nn.Module | None] | None = None):
        super().__init__()
        if modules is not None:
            super().extend(_check_items(modules, "ModuleList()"))

    @overload
    def __getitem__(self, index: SupportsIndex) -> nn.Module | None: ...

    @overload
    def __getitem__(self, index: slice) -> ModuleList: ...

    def __getitem__(self, index: SupportsIndex | slice) -> nn.Module | None | ModuleList:
        """Item at ``index``; a slice gives a new ``ModuleList`` of the same modules."""
        if isinstance(index, slice):
            return ModuleList(super().__getitem__(index))
        return super().__getitem__(index)

    def __setitem__(self, index: SupportsIndex | slice, value: Any) -> None:
        """Replace the item at ``index`` (or the items of a slice) after checking the type."""
        if isinstance(index, slice):
            super().__setitem__(index, _check_items(value, "ModuleList slice assignment"))
        else:
            super().__setitem__(index, _check_item(value, f"assignment to ModuleList[{index!r}]"))

    def append(self, module: nn.Module | None) -> ModuleList:
        """Append ``module`` and return ``self`` (as ``torch.nn.ModuleList.append`` does)."""
        super().append(_check_item(module, "ModuleList.append()"))
        return self

    def extend(self, modules: Iterable[nn.Module | None]) -> ModuleList:
        """Append every module of ``modules`` and return ``self``."""
        super().extend(_check_items(modules, "ModuleList.extend()"))
        return self

    def insert(self, index: SupportsIndex, module: nn.Module | None) -> None:
        """Insert ``module`` before position ``index``."""
        super().insert(index, _check_item(module, "ModuleList.insert()"))

    def __iadd__(self, modules: Iterable[nn.Module | None]) -> ModuleList:  # type: ignore[override]
        """``ml += modules`` is :meth:`extend`."""
        return self.extend(modules)

    def __add__(self, other: Iterable[nn.Module | None]) -> ModuleList:  # type: ignore[override]
        """Concatenation gives a new ``ModuleList``."""
        return ModuleList([*self, *_check_items(other, "ModuleList +")])

    def __repr__(self) -> str:
        if not self:
            return "ModuleList()"
        lines = [f"  ({i}): {item!r}".replace("\n", "\n  ") for i, item in enumerate(self)]
        return "ModuleList(\n" + "\n".join(lines) + "\n)"
