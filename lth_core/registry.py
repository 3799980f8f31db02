"""Name -> implementation tables, so a new strategy, control, model or dataset is one decorated function."""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from lth_core.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named table whose lookup failure is a user-facing one-line error listing the valid choices."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return deco

    def add(self, name: str, obj: T) -> T:
        return self.register(name)(obj)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UsageError(f"unknown {self.kind} {name!r}; valid choices: {', '.join(self.names())}") from None

    def check(self, name: str) -> str:
        self.get(name)
        return name

    def names(self) -> list[str]:
        return sorted(self._items)

    def registered(self) -> list[str]:
        """The names in the order they were registered (a canonical order that keeps the first ones first)."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
