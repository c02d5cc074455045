"""The memloss command line.

Each subcommand is a module in :mod:`memloss.commands` with ``add_parser(subparsers)``
that sets ``func`` (returning an exit code); modules are discovered automatically.

Every error ends in one line on stderr, ``memloss COMMAND: error: ...``, naming the file,
field or value and what to do, and an exit code: 2 for bad input (options, values, run and
data files), 1 for the environment (disk full, permissions, memory, the device), 130 for
Ctrl-C and 128 + N for a termination signal N that stopped training (143 SIGTERM, 138
SIGUSR1, 140 SIGUSR2), after a checkpoint being written is complete. An unexpected exception is reported
as an internal error in one line too; ``-v`` shows its traceback.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import pkgutil
import sys
from typing import Callable

__all__ = ["main", "build_parser", "COMMANDS", "explain"]

log = logging.getLogger("memloss.cli")


def _command_modules() -> list[str]:
    """Every module in memloss.commands is a subcommand (dropping in a file adds one)."""
    from . import commands

    return sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))


COMMANDS = _command_modules()


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="memloss", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"memloss {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"memloss.commands.{name}").add_parser(sub)
    return parser


_OS_ADVICE = {
    errno.ENOSPC: "the disk is full: free space",
    errno.EDQUOT: "the disk quota is exhausted: free space",
    errno.EACCES: "permission denied: choose a path you can write",
    errno.EPERM: "operation not permitted: choose a path you can write",
    errno.EROFS: "the file system is read-only: choose another path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
    errno.EISDIR: "the path is a folder: give a file name",
    errno.ENAMETOOLONG: "the path is too long: choose a shorter one",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n)",
    errno.EIO: "an input/output error: check the disk",
}

_MEMORY_WORDS = ("out of memory", "can't allocate memory", "not enough memory",
                 "failed to allocate", "cannot allocate memory")


def explain(e: BaseException) -> tuple[int, str]:
    """The exit code and the one-line message of an exception escaping a command."""
    torch = sys.modules.get("torch")  # a command that never loaded torch raised no torch error
    out_of_memory = (MemoryError,) if torch is None else (MemoryError, torch.OutOfMemoryError)
    text = " ".join(str(e).split())  # one line
    if isinstance(e, ValueError):
        return 2, text
    if isinstance(e, FileNotFoundError):
        return 2, f"{e.filename}: no such file or folder" if e.filename else text
    if isinstance(e, MemoryError) and text.startswith("the net has"):  # memloss's own check
        return 1, f"not enough memory: {text}"
    if isinstance(e, out_of_memory) or (
            isinstance(e, RuntimeError) and any(w in text.lower() for w in _MEMORY_WORDS)):
        return 1, (f"not enough memory ({text[:200]}); reduce hidden_size, batch_size, "
                   "eval_batch_size or the task's sizes")
    if isinstance(e, OSError):
        advice = _OS_ADVICE.get(e.errno or -1, "check the path and the disk")
        where = f"{e.filename}: " if e.filename else ""
        return 1, f"{where}{e.strerror or text} ({advice})"
    if (isinstance(e, (RuntimeError, AssertionError)) and ("cuda" in text.lower()
                                                              or "device" in text.lower())):
        return 1, (f"device error ({text[:200]}); check the device, or run on the CPU with "
                   "--set device=cpu (--device cpu)")
    return 1, (f"internal error ({type(e).__name__}: {text[:200]}); this is a bug in memloss: "
               "please report it with the command line (-v shows the traceback)")


def _report(args: argparse.Namespace, message: str, hint: Callable | None) -> None:
    extra = hint(args) if hint is not None else ""
    print(f"memloss {args.command}: error: {message}{'; ' + extra if extra else ''}",
          file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    hint = getattr(args, "hint", None)  # what a command says about its run after a failure
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as e:  # Ctrl-C, or a termination signal (training.signals)
        _report(args, str(e) or "interrupted", hint)
        return int(getattr(e, "exit_code", 130))
    except BrokenPipeError:  # the reader went away (`memloss ls schemes | head -3`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to show
        return 1
    except Exception as e:  # noqa: BLE001 (every error becomes one line)
        code, message = explain(e)
        if args.verbose:
            log.exception("traceback of the error below")
        _report(args, message, hint if code == 1 else None)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
