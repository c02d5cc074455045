"""Pixel-by-pixel MNIST and permuted MNIST (Le et al. 2015; Krueger et al. 2016, sec. 4.1).

Each 28x28 image is read as a sequence of 784 steps of one pixel (``pixels_per_step``
groups more pixels per step), in raster order or in a fixed random permutation, and the
class is predicted after the last step. Images come from IDX files: Fashion-MNIST by default
(offline: the Debian package ``dataset-fashion-mnist``), MNIST where the user has it.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from memloss.core import validate
from .base import TASKS, Batch, Task
from .data.batching import check_batch_size, check_split, class_metrics, class_sums, order
from .data.errors import DataError
from .data.idx import IDX_FORMAT, read_idx
from .data.store import data_path

__all__ = ["SeqMNIST", "PermutedMNIST", "mnist_root", "load_mnist", "SOURCES", "PIXELS"]

PIXELS = 28 * 28
SOURCES = ("fashion-mnist", "mnist")
#: where the Debian package dataset-fashion-mnist installs its IDX files
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
_STEMS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _candidates(source: str) -> list[Path]:
    out = [data_path(source)]
    if source == "fashion-mnist":
        out.append(DEBIAN_FASHION)
    return out


def _find(root: Path, stem: str) -> Path | None:
    dotted = stem.replace("-idx", ".idx")  # e.g. train-images.idx3-ubyte from some unpackers
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (root / name).is_file():
            return root / name
    return None


def mnist_root(source: str, root: "str | os.PathLike[str] | None" = None) -> Path:
    """The directory holding the IDX files of ``source`` (an explicit ``root`` wins)."""
    if source not in SOURCES:
        raise ValueError(f"unknown MNIST source {source!r}; valid: {', '.join(SOURCES)}")
    tried = [Path(root).expanduser()] if root is not None else _candidates(source)
    for r in tried:
        if _find(r, _STEMS["train"][0]) is not None:
            return r
    hint = (" or `apt-get install dataset-fashion-mnist`" if source == "fashion-mnist" else "")
    raise DataError(tried[0], f"no {source} IDX files (train-images-idx3-ubyte[.gz] ...) in "
                    f"{', '.join(map(str, tried))}; run `memloss data fetch {source}`{hint}",
                    IDX_FORMAT)


@functools.lru_cache(maxsize=4)
def _load(root: str, part: str, stamp: tuple) -> tuple[Tensor, Tensor]:
    img_stem, lab_stem = _STEMS[part]
    r = Path(root)
    paths = []
    for stem in (img_stem, lab_stem):
        p = _find(r, stem)
        if p is None:
            raise DataError(r / (stem + ".gz"), "file not found", IDX_FORMAT)
        paths.append(p)
    images = read_idx(paths[0], dims=(None, 28, 28))
    labels = read_idx(paths[1], ndim=1)
    if images.dtype != torch.uint8 or labels.dtype != torch.uint8:
        raise DataError(paths[0], f"dtypes {images.dtype}/{labels.dtype}", "uint8 IDX (0x08)")
    if len(images) != len(labels):
        raise DataError(paths[1], f"{len(labels)} labels for {len(images)} images",
                        "one label per image")
    if int(labels.max()) > 9:
        raise DataError(paths[1], f"label {int(labels.max())} outside 0..9", "labels 0..9")
    return images.reshape(len(images), PIXELS), labels.long()


def load_mnist(root: Path, part: str) -> tuple[Tensor, Tensor]:
    """Images ``[N, 784]`` uint8 and labels ``[N]`` int64 of ``part`` ("train" or "test")."""
    stamp = tuple((p.name, p.stat().st_mtime_ns) for p in sorted(root.iterdir()) if p.is_file())
    return _load(str(root), part, stamp)


@TASKS.register("seq-mnist", "pixel-by-pixel (Fashion-)MNIST classification, 784 steps")
@dataclass(frozen=True)
class SeqMNIST(Task):
    """Sequential MNIST: ``784 / pixels_per_step`` steps of ``pixels_per_step`` pixels in
    [0, 1]; the class is read from the last step.

    ``source``: "fashion-mnist" (default) or "mnist"; ``root``: a directory with the IDX files
    (default: the data directory, then the Debian package's). ``valid_size`` training images
    are held out for validation (chosen by ``split_seed``); ``train_size`` keeps only that
    many of the remaining training images (a small training set that a network overfits);
    ``limit`` caps each split's size for quick runs.
    """

    name: ClassVar[str] = "seq-mnist"
    target: ClassVar[str] = "last"
    metric: ClassVar[str] = "accuracy"
    lower_is_better: ClassVar[bool] = False
    permuted: ClassVar[bool] = False

    source: str = "fashion-mnist"
    root: str | None = None
    pixels_per_step: int = 1
    valid_size: int = 5000
    split_seed: int = 0
    train_size: int | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}; valid: {', '.join(SOURCES)}")
        pps = self.pixels_per_step
        if not isinstance(pps, int) or pps < 1 or PIXELS % pps:
            raise ValueError(f"pixels_per_step must divide {PIXELS}, got {pps!r}")
        validate.integer(self.name, "valid_size", self.valid_size, minimum=0)
        validate.optional(validate.integer, self.name, "train_size", self.train_size, minimum=1)
        validate.optional(validate.integer, self.name, "limit", self.limit)

    @property
    def permutation(self) -> Tensor | None:
        """The pixel order (a permutation of 0..783), or None for raster order."""
        return None

    @property
    def steps(self) -> int:
        return PIXELS // self.pixels_per_step

    def net_kwargs(self) -> dict:
        return {"input_size": self.pixels_per_step, "output_size": 10}

    @classmethod
    def tiny(cls, fixtures: Path) -> dict:
        return {"source": "mnist", "root": str(fixtures / "mnist"), "valid_size": 4,
                "pixels_per_step": 49}

    def run_info(self) -> dict:
        """The data source actually read and the pixel order (stored with the run)."""
        perm = self.permutation
        return {"data_root": str(mnist_root(self.source, self.root)),
                "chance": 0.1,  # a uniform guess among the ten classes
                "permutation": None if perm is None else perm.tolist()}

    def _split(self, split: str) -> tuple[Tensor, Tensor]:
        check_split(split)
        root = mnist_root(self.source, self.root)
        if split == "test":
            images, labels = load_mnist(root, "test")
        else:
            images, labels = load_mnist(root, "train")
            if self.valid_size >= len(images):
                raise ValueError(f"valid_size {self.valid_size} leaves no training images "
                                 f"(the training file has {len(images)})")
            g = torch.Generator().manual_seed(self.split_seed)
            idx = torch.randperm(len(images), generator=g)
            idx = idx[:self.valid_size] if split == "valid" else idx[self.valid_size:]
            if split == "train" and self.train_size is not None:
                if self.train_size > len(idx):
                    raise ValueError(f"train_size {self.train_size} is more than the "
                                     f"{len(idx)} training images left after valid_size "
                                     f"{self.valid_size}")
                idx = idx[:self.train_size]
            images, labels = images[idx], labels[idx]
        if self.limit is not None:
            images, labels = images[:self.limit], labels[:self.limit]
        return images, labels

    def inputs(self, images: Tensor, permutation: Tensor | None = None) -> Tensor:
        """uint8 images ``[N, 784]`` -> float sequences ``[N, steps, pixels_per_step]`` in
        [0, 1], pixels in :attr:`permutation` order (pass it to avoid recomputing it)."""
        perm = self.permutation if permutation is None else permutation
        if perm is not None:
            images = images[:, perm]
        x = images.to(torch.float32).div_(255.0)
        return x.reshape(len(x), self.steps, self.pixels_per_step)

    def size(self, split: str) -> int:
        return len(self._split(split)[1])

    def batches(self, split: str, batch_size: int, *, generator: torch.Generator | None = None
                ) -> Iterator[Batch]:
        check_batch_size(batch_size)
        images, labels = self._split(split)
        if len(labels) == 0:
            raise ValueError(f"split {split!r} is empty (valid_size={self.valid_size})")
        idx = order(len(labels), split == "train", generator)
        perm = self.permutation
        for i in range(0, len(idx), batch_size):
            j = idx[i:i + batch_size]
            yield Batch(self.inputs(images[j], perm), labels[j])

    def loss(self, output: Tensor, batch: Batch) -> Tensor:
        return F.cross_entropy(output[:, -1], batch.targets)

    def score(self, probs: Tensor, batch: Batch) -> dict[str, float]:
        return class_sums(probs, batch.targets)

    def finalize(self, sums: dict[str, float]) -> dict[str, float]:
        return class_metrics(sums)


@TASKS.register("permuted-mnist", "pixel-by-pixel (Fashion-)MNIST in a fixed random pixel order")
@dataclass(frozen=True)
class PermutedMNIST(SeqMNIST):
    """Permuted sequential MNIST: the pixels in one fixed order, ``torch.randperm(784)`` from
    ``perm_seed`` (a true permutation; exposed as :attr:`permutation` for the run directory)."""

    name: ClassVar[str] = "permuted-mnist"
    permuted: ClassVar[bool] = True

    perm_seed: int = 0

    @property
    def permutation(self) -> Tensor:
        return torch.randperm(PIXELS, generator=torch.Generator().manual_seed(self.perm_seed))
