"""``memloss data fetch NAME [--dir DIR]``, ``memloss data path [NAME]``, ``memloss data list``:
download and verify data sets, and say where they live."""
from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def _fetch(args: argparse.Namespace) -> int:
    from memloss.tasks.data.store import fetch

    def report(name: str, status: str) -> None:
        print(f"{name}: {'already present, verified' if status == 'ok' else 'downloaded, verified'}")

    root = fetch(args.name, args.dir, timeout=args.timeout, force=args.force, on_file=report)
    print(root)
    return 0


def _path(args: argparse.Namespace) -> int:
    from memloss.tasks.data.store import data_dir, data_path

    print(data_path(args.name) if args.name else data_dir())
    return 0


def _list(args: argparse.Namespace) -> int:
    from memloss.tasks.data.store import DATASETS, data_path, missing_files

    rows = []
    for name in DATASETS.list():
        ds = DATASETS.get(name)
        missing = missing_files(ds)
        state = "present" if not missing else ("absent" if len(missing) == len(ds.files)
                                               else f"{len(missing)} file(s) missing")
        how = "fetch" if ds.downloadable else "by hand"
        rows.append((name, how, state, str(data_path(name)), ds.description))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    return 0


def add_parser(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("data", help="download, verify and locate data sets",
                       description="Data sets live in $MEMLOSS_DATA (default "
                                   "~/.cache/memloss/data), one directory per data set.")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    f = dsub.add_parser("fetch", help="download a data set and verify every file")
    f.add_argument("name", help="data set (see `memloss data list`)")
    f.add_argument("--dir", default=None, help="directory to store it in (default: its data path)")
    f.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a connection")
    f.add_argument("--force", action="store_true",
                   help="download again even if the files verify (replaced only by good copies)")
    f.set_defaults(func=_fetch)
    q = dsub.add_parser("path", help="print the data directory, or one data set's directory")
    q.add_argument("name", nargs="?", default=None)
    q.set_defaults(func=_path)
    ls = dsub.add_parser("list", help="the catalogue: how each data set is obtained, whether present")
    ls.set_defaults(func=_list)
