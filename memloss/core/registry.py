"""A small name -> object registry (timm style): ``@REG.register("name")`` and ``REG.list()``.

A registry may also take plug-ins from Python entry points (``entry_points="memloss.schemes"``):
a separately installed package declares, in its ``pyproject.toml``::

    [project.entry-points."memloss.schemes"]
    my-scheme = "my_package.schemes:MyScheme"

and the registry loads them the first time it is looked into. The module may register the
object itself (``@SCHEMES.register("my-scheme")``); otherwise the loaded object is
registered under the entry point's name. A plug-in that fails to import is skipped with a
warning naming it and the error.
"""
from __future__ import annotations

import difflib
import logging
from importlib import metadata
from typing import Callable, Generic, Iterator, TypeVar

from .validate import shown

__all__ = ["Registry", "closest"]

T = TypeVar("T")

#: an unknown name's error lists every valid name up to this many, else the closest ones
_LIST_ALL = 12
_CLOSEST = 3

log = logging.getLogger(__name__)


def closest(text: str, names: list[str]) -> list[str]:
    """Up to :data:`_CLOSEST` names like ``text``: the longest shared beginning first, then
    difflib's similarity; a name qualifies by a similarity of 0.5 or by containing ``text``."""
    def prefix(n: str) -> int:
        return next((i for i, (a, b) in enumerate(zip(text, n)) if a != b), min(len(text), len(n)))

    ratio = {n: difflib.SequenceMatcher(None, text, n).ratio() for n in names}
    fits = [n for n in names if ratio[n] >= 0.5 or (text and text in n)]
    return sorted(fits, key=lambda n: (-prefix(n), -ratio[n]))[:_CLOSEST]


class Registry(Generic[T]):
    """Maps names to objects, with one-line descriptions, and fails clearly on unknown names.
    ``entry_points``: the entry-point group plug-ins register in (see the module doc)."""

    def __init__(self, kind: str, entry_points: str | None = None) -> None:
        self.kind = kind
        self.entry_points = entry_points
        self._items: dict[str, T] = {}
        self._docs: dict[str, str] = {}
        self._plugins_loaded = entry_points is None

    def _load_plugins(self) -> None:
        """Import the entry points of ``self.entry_points`` once."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in metadata.entry_points(group=self.entry_points):
            try:
                obj = ep.load()
            except Exception as e:  # a broken plug-in must not break memloss
                log.warning("%s plug-in %r (%s) could not be loaded and is skipped: %s: %s",
                            self.kind, ep.name, ep.value, type(e).__name__, e)
                continue
            if ep.name not in self._items:
                self.register(ep.name)(obj)

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
        self._load_plugins()
        try:
            return self._items[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name
            raise ValueError(self.unknown(name)) from None

    def unknown(self, name: object) -> str:
        """The one-line error for an unknown name: every valid name when there are few
        (:data:`_LIST_ALL` or fewer), else the closest ones (difflib, then names that contain
        it) and how many there are."""
        names = self.list()
        if len(names) <= _LIST_ALL:
            choices = ", ".join(names) or f"none (no {self.kind} is registered)"
            return f"unknown {self.kind} {shown(name)}; valid choices: {choices}"
        close = closest(str(name).strip().lower(), names)
        hint = f"did you mean {', '.join(close)}? " if close else "no close match "
        return f"unknown {self.kind} {shown(name)}; {hint}({len(names)} in all)"

    def describe(self, name: str) -> str:
        self.get(name)
        return self._docs[name]

    def list(self) -> list[str]:
        self._load_plugins()
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        self._load_plugins()
        return iter(self._items)

    def __len__(self) -> int:
        self._load_plugins()
        return len(self._items)
