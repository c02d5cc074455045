"""A small name -> object registry (timm style): ``@REG.register("name")`` and ``REG.list()``."""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from .validate import shown

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects, with one-line descriptions, and fails clearly on unknown names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._docs: dict[str, str] = {}

    def register(self, name: str, description: str | None = None) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            doc = description or (getattr(obj, "__doc__", None) or "").strip().splitlines()
            self._docs[name] = doc if isinstance(doc, str) else (doc[0] if doc else "")
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name
            choices = ", ".join(self.list()) or f"none (no {self.kind} is registered)"
            raise ValueError(f"unknown {self.kind} {shown(name)}; valid choices: {choices}") from None

    def describe(self, name: str) -> str:
        self.get(name)
        return self._docs[name]

    def list(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
