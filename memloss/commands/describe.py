"""``memloss describe SCHEME``: what a scheme does and every parameter with its default and
meaning; given a scheme text (``gal:p=0.3``, stacks with ``+``), the values it resolves to,
defaults included, and its full text form."""
from __future__ import annotations

import argparse
from dataclasses import MISSING, fields

__all__ = ["add_parser", "parameter_rows", "parameter_lines"]


def parameter_rows(scheme_class: type, scheme: object = None) -> list[tuple[str, str, str]]:
    """``(name, value, meaning)`` per parameter of a scheme class, from its fields'
    ``metadata["help"]``: the value is the default, or ``scheme``'s value with the default
    beside it where they differ."""
    rows = []
    for f in fields(scheme_class):
        default = f.default if f.default is not MISSING else None
        value = str(default)
        if scheme is not None and getattr(scheme, f.name) != default:
            value = f"{getattr(scheme, f.name)} (default {default})"
        rows.append((f.name, value, f.metadata.get("help", "")))
    return rows


def parameter_lines(scheme_class: type, scheme: object = None, indent: str = "  ") -> list[str]:
    """:func:`parameter_rows` as aligned lines: ``name=value  meaning``."""
    rows = [(f"{n}={v}", h) for n, v, h in parameter_rows(scheme_class, scheme)]
    width = max((len(a) for a, _ in rows), default=0)
    return [f"{indent}{a:<{width}}  {h}".rstrip() for a, h in rows]


def _run(args: argparse.Namespace) -> int:
    from memloss.models.schemes import SCHEMES, Stack, parse_scheme

    scheme = parse_scheme(args.scheme)
    parts = scheme.schemes if isinstance(scheme, Stack) else (scheme,)
    for s in parts:
        print(f"{s.name}: {SCHEMES.describe(s.name)}")
        lines = parameter_lines(type(s), s)
        print("\n".join(lines) if lines else "  (no parameters)")
    print(f"resolved: {scheme.spec}")
    return 0


def add_parser(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("describe", help="a scheme's parameters: defaults, meanings, resolved values",
                       description="What a scheme does and every parameter with its default "
                                   "and meaning. Given parameters (e.g. 'gal:p=0.3'), each "
                                   "value it resolves to, defaults included.")
    p.add_argument("scheme", help="a scheme name or text, e.g. gal, 'gal:p=0.3' or "
                                  "'semeniuta:p=0.25+zaremba:p=0.5' (memloss ls schemes)")
    p.set_defaults(func=_run)
