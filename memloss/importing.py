"""Turn a plain PyTorch state dict of a model trained elsewhere into a memloss run directory.

The file is read without unpickling: safetensors, or ``torch.load(weights_only=True)``
(a ``torch.save(model.state_dict())`` file, or a checkpoint dict holding one under
``state_dict``/``model``/``model_state_dict``). The model must be an embedding (or float
input), a torch.nn-named recurrent stack (``weight_ih_l0`` ...) and optionally a linear
head, under any prefixes: PyTorch's word_language_model (``encoder``, ``rnn``,
``decoder``), ``embedding``/``lstm``/``fc`` classifiers and memloss's own layout are found
by themselves; ``parts`` names them otherwise. A key that belongs to none of the three is
an error, so nothing the model computes is dropped without a word. A model whose
vocabulary is larger than the task's (``--fold-unk``) gets a folded head: every model word
the task lacks is summed into the task's ``<unk>`` (:func:`unk_folding`).

Everything written is verified first, each failure one line naming the tensor: every tensor
used is floating point, finite and not a meta tensor; every layer of the recurrent stack is
complete (both weights, and the biases of every layer or of none: a missing bias is never
made zero) and every tensor has its layer's shape. ``out_dir`` follows ``memloss train``'s
guard (a new or empty folder). A file that is neither safetensors nor a ``torch.save`` file
is called so; a ``torch.save`` file holding Python objects is refused without unpickling.

The run directory holds ``config.json`` (the task, the net with the scheme the model was
trained with, and ``info.imported``: the source file, its SHA-256, the parts and the
vocabulary mapping), ``model.safetensors`` and a ``final.json`` without test metrics; so
``memloss probe``, ``memloss eval`` and ``memloss report`` work on it as on a trained run.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import math
import pickle
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

from memloss.build import net_config, task_from
from memloss.config import TrainConfig
from memloss.core import runfiles as rf
from memloss.diagnostics.external import net_from_weights
from memloss.models import DATA_FIELDS, Net
from memloss.models.cells import get_cell, native_cells
from memloss.runs import config_record

__all__ = ["import_state_dict", "read_state_dict", "find_parts", "Parts", "vocab_permutation",
           "unk_folding", "UnkFolding", "PART_NAMES", "check_tensors"]

log = logging.getLogger(__name__)

#: prefixes tried for each part, in order (PyTorch's word_language_model first)
PART_NAMES = {
    "embedding": ("encoder", "embedding", "embed", "emb", "embeddings", "word_embeddings",
                  "embedder"),
    "rnn": ("rnn", "lstm", "gru", "recurrent", "rnns", "encoder_rnn"),
    "head": ("decoder", "head", "fc", "linear", "classifier", "out", "output", "proj", "fc_out"),
}
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")


@dataclass(frozen=True)
class Parts:
    """The prefixes of the three parts in a state dict (``None``: the model has no such part;
    ``""`` for ``rnn``: its weights sit at the top level)."""

    embedding: str | None
    rnn: str
    head: str | None


def read_state_dict(path: "str | os.PathLike[str]") -> dict[str, Tensor]:
    """The tensors of a safetensors file or of a ``torch.load(weights_only=True)`` file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} does not exist; pass the file the model's state dict was "
                         "saved to")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as e:
            raise ValueError(f"{path} is not a readable safetensors file ({e})") from None
    neither = (f"{path} is neither a safetensors file nor a torch.save file; pass the file "
               "the model's state dict was saved to")
    if not _torch_save_file(path):
        raise ValueError(neither)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(
            f"{path} holds pickled Python objects (a whole model saved with torch.save(model)?), "
            "which memloss does not unpickle; save the weights instead: "
            "torch.save(model.state_dict(), 'model.pt')") from None
    except Exception as e:  # noqa: BLE001 (torch raises many types for damaged files)
        raise ValueError(f"{neither} ({type(e).__name__}: {' '.join(str(e).split())[:120]})"
                         ) from None
    if isinstance(obj, Mapping) and not all(isinstance(v, Tensor) for v in obj.values()):
        inner = next((obj[k] for k in _CHECKPOINT_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is not None:
            obj = inner
    if not isinstance(obj, Mapping) or not obj or \
            not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()):
        raise ValueError(f"{path} does not hold a state dict (names -> tensors); save one with "
                         "torch.save(model.state_dict(), PATH)")
    return dict(obj)


def _torch_save_file(path: Path) -> bool:
    """Whether ``path`` starts like a ``torch.save`` file: a zip archive (the format since
    PyTorch 1.6) or a pickle (protocol 2+, the legacy format)."""
    import zipfile

    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return zipfile.is_zipfile(path) or (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def check_tensors(state: Mapping[str, Tensor], names: Sequence[str]) -> None:
    """Every tensor ``names`` lists must be a floating-point tensor holding finite values on
    a real device; else one line naming the first bad tensor."""
    for name in names:
        t = state[name]
        if t.device.type == "meta":
            raise ValueError(f"tensor {name!r} is a meta tensor (shape only, no values); save "
                             "the model's real weights")
        if not t.is_floating_point():
            raise ValueError(f"tensor {name!r} has dtype {str(t.dtype).removeprefix('torch.')}; "
                             "weights must be floating point (float32, float64, float16, "
                             "bfloat16): is this the model's state dict?")
        if not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).sum())
            raise ValueError(f"tensor {name!r} holds {bad} NaN or infinite value(s); these "
                             "weights cannot be scored or probed: export a checkpoint from "
                             "before the training diverged")


def _recurrent_shapes(recurrent: Mapping[str, Tensor], gates: int, prefix: str) -> None:
    """Every layer of the stack is complete (``weight_ih``/``weight_hh``, and the biases of
    every layer or of none) and every tensor has the shape its layer needs."""
    w_hh = recurrent["weight_hh_l0"]
    hidden = int(w_hh.shape[1])
    layers = 0
    while f"weight_ih_l{layers}" in recurrent or f"weight_hh_l{layers}" in recurrent:
        layers += 1
    has_bias = any(k.startswith("bias_") for k in recurrent)
    for k in range(layers):
        names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if has_bias else [])
        for base in names:
            key = f"{base}_l{k}"
            if key not in recurrent:
                raise ValueError(f"tensor {prefix + key!r} is missing from the state dict (layer "
                                 f"{k} of the {layers}-layer stack is incomplete); memloss would "
                                 "make it zero: export the whole state dict")
            t = recurrent[key]
            width = None if key == "weight_ih_l0" else hidden
            want: tuple[int | None, ...] = (gates * hidden,) if base.startswith("bias") else \
                (gates * hidden, width)
            have = tuple(int(d) for d in t.shape)
            if len(have) != len(want) or any(w is not None and w != h for w, h in zip(want, have)):
                shown = tuple("*" if w is None else w for w in want)
                raise ValueError(f"tensor {prefix + key!r} has shape {have}; layer {k} of a "
                                 f"hidden size {hidden} stack needs {shown}")
    extra = sorted(k for k in recurrent if not any(
        k == f"{b}_l{i}" for b in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        for i in range(layers)))
    if extra:
        raise ValueError(f"tensor {prefix + extra[0]!r} does not belong to a {layers}-layer "
                         "unidirectional stack; memloss would leave it out")


def _strip_wrappers(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Drop a ``module.`` prefix every key has (DataParallel) or a ``_orig_mod.`` one
    (torch.compile)."""
    out = dict(state)
    for wrapper in ("module.", "_orig_mod."):
        if out and all(k.startswith(wrapper) for k in out):
            out = {k[len(wrapper):]: v for k, v in out.items()}
    return out


def _rnn_prefix(state: Mapping[str, Tensor], given: str | None) -> str:
    if given is not None:
        key = f"{given}.weight_ih_l0" if given else "weight_ih_l0"
        if key not in state:
            raise ValueError(f"no {key!r} in the state dict; the recurrent part is not at "
                             f"{given!r}")
        return given
    found = sorted({k[:-len("weight_ih_l0")].rstrip(".") for k in state
                    if k.endswith("weight_ih_l0")})
    if len(found) != 1:
        raise ValueError("the state dict has " + ("no torch.nn recurrent layer (weight_ih_l0)"
                         if not found else f"several recurrent stacks {found}") +
                         "; name the parts with --part rnn=PREFIX (and embedding=, head=)")
    return found[0]


def _linear_prefix(state: Mapping[str, Tensor], names: Sequence[str], given: str | None,
                   width: int, part: str) -> str | None:
    """The prefix of a 2-D ``.weight`` of ``width`` columns among ``names`` (or ``given``)."""
    if given is not None:
        if given in ("", "none"):
            return None
        if f"{given}.weight" not in state:
            raise ValueError(f"no {given + '.weight'!r} in the state dict for the {part}")
        return given
    hits = [n for n in names if f"{n}.weight" in state and state[f"{n}.weight"].dim() == 2
            and int(state[f"{n}.weight"].shape[1]) == width]
    return hits[0] if hits else None


def find_parts(state: Mapping[str, Tensor], given: Mapping[str, str] | None = None) -> Parts:
    """Where the embedding, the recurrent stack and the head sit in ``state`` (``given``
    overrides any of them; ``""`` or ``"none"`` for embedding/head: the model has none)."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(PART_NAMES))
    if unknown:
        raise ValueError(f"unknown part {unknown[0]!r}; parts are {', '.join(PART_NAMES)}")
    rnn = _rnn_prefix(state, given.get("rnn"))
    dot = f"{rnn}." if rnn else ""
    w_hh = state[f"{dot}weight_hh_l0"]
    hidden, width = int(w_hh.shape[1]), int(state[f"{dot}weight_ih_l0"].shape[1])
    emb = _linear_prefix(state, PART_NAMES["embedding"], given.get("embedding"), width, "embedding")
    head = _linear_prefix(state, PART_NAMES["head"], given.get("head"), hidden, "head")
    return Parts(emb, rnn, head)


def vocab_permutation(model_vocab: Sequence[str], task_vocab: Sequence[str]
                      ) -> tuple[list[int | None], list[str]]:
    """For each task token id, the model's row of that token (None: the model never had it),
    and the task's tokens missing from the model. Model tokens the task lacks are an error:
    the task's softmax would leave them out and so score another model."""
    rows = {t: i for i, t in enumerate(model_vocab)}
    if len(rows) != len(model_vocab):
        raise ValueError("the model vocabulary lists a token twice")
    extra = [t for t in model_vocab if t not in set(task_vocab)]
    if extra:
        raise ValueError(f"{len(extra)} token(s) of the model's vocabulary are not in the task's "
                         f"(e.g. {extra[:5]}); the task must tokenize the text the way the "
                         "model was trained (check its lower/max_vocab/split_punct settings)")
    perm = [rows.get(t) for t in task_vocab]
    return perm, [t for t, r in zip(task_vocab, perm) if r is None]


def _read_vocab(path: "str | os.PathLike[str]") -> list[str]:
    """One token per line in the model's id order, or a JSON list of tokens."""
    text = Path(path).read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        tokens = json.loads(text)
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError(f"{path}: a JSON vocabulary is a list of token strings")
        return tokens
    return text.rstrip("\n").split("\n")


def _remap(weight: Tensor, perm: list[int | None], fill: float) -> Tensor:
    """Rows of ``weight`` in the task's order; rows the model lacks are ``fill``."""
    out = weight.new_full((len(perm),) + tuple(weight.shape[1:]), fill)
    have = [j for j, r in enumerate(perm) if r is not None]
    out[have] = weight[[perm[j] for j in have]]
    return out


#: the head bias of a task token the model never had: its probability is exactly 0
_NEVER = -1e9


def import_state_dict(source: "str | os.PathLike[str]", out_dir: "str | os.PathLike[str]", *,
                      task: str, task_params: Mapping[str, Any] | None = None,
                      cell: str | None = None, hidden_size: int | None = None,
                      num_layers: int | None = None, scheme: str = "none",
                      nonlinearity: str = "tanh", vocab: "str | os.PathLike[str] | None" = None,
                      parts: Mapping[str, str] | None = None, fold_unk: bool = False,
                      command: Sequence[str] | None = None) -> Path:
    """Write a run directory at ``out_dir`` for the model whose state dict is ``source``.

    ``task``/``task_params``: the memloss task the model is scored and probed on. ``cell``
    (``lstm``, ``gru``, ``rnn``; with ``nonlinearity`` for rnn), ``hidden_size`` and
    ``num_layers`` are read from the weights; given, they are checked against them.
    ``scheme``: the regularization the model was trained with. ``vocab``: the model's
    vocabulary (one token per line in its id order, or a JSON list) when its token ids are
    not the task's: the embedding and head rows are reordered to the task's vocabulary, and
    task tokens the model never had get a zero embedding and probability 0. ``fold_unk``
    (with ``vocab``): model words the task lacks are folded into the task's ``<unk>``
    (:func:`unk_folding`), so a model with a larger vocabulary is scored on the task
    exactly. Returns the run directory.
    """
    out = Path(out_dir)
    _check_out(out)
    state = _strip_wrappers(read_state_dict(source))
    found = find_parts(state, parts)
    dot = f"{found.rnn}." if found.rnn else ""
    recurrent = {k[len(dot):]: v for k, v in state.items() if k.startswith(dot) and
                 k[len(dot):].split("_l")[0] in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    used = {dot + k for k in recurrent}
    emb = head_w = head_b = None
    if found.embedding is not None:
        emb = state[f"{found.embedding}.weight"]
        used.add(f"{found.embedding}.weight")
    if found.head is not None:
        head_w = state[f"{found.head}.weight"]
        head_b = state.get(f"{found.head}.bias")
        used |= {f"{found.head}.weight", f"{found.head}.bias"}
    left = sorted(set(state) - used)
    if left:
        raise ValueError(f"the state dict has weights outside an embedding -> recurrent -> linear "
                         f"head model: {left[:6]}; memloss would leave them out and probe another "
                         "model (name the parts with --part if they were not found)")
    check_tensors(state, sorted(used & set(state)))
    cell = _cell(recurrent, cell)
    _recurrent_shapes(recurrent, get_cell(cell).num_gates, dot)
    if head_b is not None and (head_b.dim() != 1 or head_w is None
                               or int(head_b.shape[0]) != int(head_w.shape[0])):
        rows = int(head_w.shape[0]) if head_w is not None else "C"
        raise ValueError(f"tensor {found.head + '.bias'!r} has shape {tuple(head_b.shape)}; the "
                         f"head's bias needs ({rows},)")
    the_task = task_from(task, dict(task_params or {}))
    mapping: dict[str, Any] = {}
    folding: UnkFolding | None = None
    if fold_unk and vocab is None:
        raise ValueError("--fold-unk maps the model's vocabulary onto the task's: give the "
                         "model's vocabulary with --vocab")
    if fold_unk:
        emb, folding, mapping = _fold_vocab(the_task, vocab, emb, head_w)
    elif vocab is not None:
        emb, head_w, head_b, mapping = _apply_vocab(the_task, vocab, emb, head_w, head_b)
    net = net_from_weights(cell, recurrent, embedding=emb, head_weight=head_w, head_bias=head_b,
                           scheme=scheme, nonlinearity=nonlinearity)
    if folding is not None:
        net = _with_folded_head(net, folding)
    _check_sizes(net, hidden_size, num_layers, the_task)
    train = TrainConfig(task=task, task_params=dict(task_params or {}),
                        net={k: v for k, v in net.config.to_dict().items()
                             if k not in DATA_FIELDS})
    full = net_config(train, the_task)
    if full != net.config:
        raise ValueError(f"the imported net {net.config} differs from the one the task "
                         f"{task!r} defines, {full}")
    info = {"imported": {"source": str(Path(source).resolve()), "sha256": _sha256(source),
                         "parts": {"embedding": found.embedding, "rnn": found.rnn,
                                   "head": found.head}, **mapping}}
    record = config_record(train, net.config, path=net.rnn.chosen_path(),
                           task_info=the_task.run_info(), command=list(command or []), info=info)
    out.mkdir(parents=True, exist_ok=True)
    with rf.RunLock(out, "import"):
        _check_out(out)  # again, now that no one else can write it
        rf.write_json(out / rf.CONFIG, record)
        rf.save_weights(out / rf.MODEL, net.state_dict(), {"step": "0", "imported": "1"})
        rf.write_json(out / rf.FINAL, {"weights": "last", "metric": the_task.metric,
                                       "imported": True, "test": {}})
    log.info("imported %s (%s, %d layer(s) of %d, scheme %s) into %s", source, cell,
             net.config.num_layers, net.config.hidden_size, net.config.scheme, out)
    return out


def _check_out(out: Path) -> None:
    """``--out`` follows ``memloss train``'s guard: a new or empty folder, never a file, a
    run or a folder holding other files."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a directory")
    if rf.is_run_dir(out):
        raise ValueError(f"{out} already holds a run; choose another --out")
    entries = rf.run_entries(out) if out.is_dir() else []
    if entries:
        more = f" and {len(entries) - 5} more" if len(entries) > 5 else ""
        shown = ", ".join(entries[:5]) + more
        raise ValueError(f"--out {out} is not empty and holds no memloss run ({shown}); choose a "
                         "new or empty directory (memloss does not write over other files)")


def _cell(recurrent: Mapping[str, Tensor], cell: str | None) -> str:
    """The cell the gate count of ``weight_hh_l0`` says (checked against ``cell`` if given)."""
    w = recurrent["weight_hh_l0"]
    gates = int(w.shape[0]) // int(w.shape[1])
    by_gates = {spec.num_gates: spec.name for spec in native_cells().values()}
    inferred = by_gates.get(gates) if int(w.shape[0]) % int(w.shape[1]) == 0 else None
    if inferred is None:
        raise ValueError(f"weight_hh_l0 has shape {tuple(w.shape)}: not 1, 3 or 4 gate blocks of "
                         "a square recurrent matrix (rnn, gru, lstm)")
    if cell is not None and cell != inferred:
        raise ValueError(f"--cell {cell} but the weights are a {inferred}'s ({gates} gate "
                         f"block(s) in weight_hh_l0 {tuple(w.shape)})")
    return inferred


def _check_sizes(net: Net, hidden_size: int | None, num_layers: int | None, task: Any) -> None:
    c = net.config
    for name, given, have in (("--hidden-size", hidden_size, c.hidden_size),
                              ("--layers", num_layers, c.num_layers)):
        if given is not None and given != have:
            raise ValueError(f"{name} {given} but the weights have {have}")
    want = task.net_kwargs()
    for key, value in want.items():
        have = getattr(c, key)
        if have != value:
            hint = {"vocab_size": " (give the model's vocabulary with --vocab)",
                    "output_size": " (name the head with --part head=PREFIX)" if have is None
                    else ""}.get(key, "")
            raise ValueError(f"the task {task.name!r} needs {key}={value}, the weights have "
                             f"{'none' if have is None else have}{hint}")


def _vocabs(task: Any, vocab: "str | os.PathLike[str]", emb: Tensor | None, drop: str
            ) -> tuple[Any, list[str]]:
    """The task's vocabulary (its ``Vocab``) and the model's (``vocab``'s tokens in id
    order), checked against the embedding's rows; ``drop``: the options to drop when the
    task has no vocabulary."""
    task_vocab = getattr(task, "vocab", None)
    if getattr(task_vocab, "itos", None) is None:
        raise ValueError(f"task {task.name!r} has no vocabulary to map the model's tokens to; "
                         f"drop {drop}")
    model_vocab = _read_vocab(vocab)
    if emb is not None and int(emb.shape[0]) != len(model_vocab):
        raise ValueError(f"--vocab lists {len(model_vocab)} tokens, the embedding has "
                         f"{int(emb.shape[0])} rows")
    return task_vocab, model_vocab


def _apply_vocab(task: Any, vocab: "str | os.PathLike[str]", emb: Tensor | None,
                 head_w: Tensor | None, head_b: Tensor | None
                 ) -> tuple[Tensor | None, Tensor | None, Tensor | None, dict[str, Any]]:
    task_vocab, model_vocab = _vocabs(task, vocab, emb, "--vocab")
    task_vocab = task_vocab.itos
    perm, missing = vocab_permutation(model_vocab, task_vocab)
    if missing:
        log.warning("%d task token(s) the model never had get probability 0: %s", len(missing),
                    missing[:5])
    emb = None if emb is None else _remap(emb, perm, 0.0)
    if head_w is not None and int(head_w.shape[0]) == len(model_vocab):
        bias = head_b if head_b is not None else head_w.new_zeros(head_w.shape[0])
        head_w, head_b = _remap(head_w, perm, 0.0), _remap(bias, perm, _NEVER)
    return emb, head_w, head_b, {"vocab": {"file": str(Path(vocab).resolve()),
                                           "model_tokens": len(model_vocab),
                                           "task_tokens": len(task_vocab),
                                           "never_seen": missing}}


@dataclass(frozen=True)
class UnkFolding:
    """A model's vocabulary mapped onto a task's, the words the task lacks folded into its
    unknown token (the buffers of :class:`memloss.models.heads.FoldedHead`, and the
    embedding rows of each task token).

    ``source[t]``: the model word task token t reads (None: none); ``offset[t]``: added to
    its log-probability; ``fold``: the model words summed into task token ``into`` (the
    task's unknown token); ``embed[t]``: the model rows whose mean embeds task token t;
    ``mapped``: the task tokens read as the model word of the same name; ``shared``: the
    task tokens the model lacks, read as the model's unknown token."""

    words: int
    source: tuple[int | None, ...]
    offset: tuple[float, ...]
    fold: tuple[int, ...]
    into: int
    embed: tuple[tuple[int, ...], ...]
    mapped: int
    shared: tuple[str, ...]
    unk: str

    def summary(self) -> str:
        """One line: how many model words were folded, how many task tokens mapped."""
        line = (f"{len(self.fold)} model word(s) the task lacks folded into the task's "
                f"{self.unk}; {self.mapped} task token(s) mapped to the model's word of that name")
        if self.shared:
            line += (f"; {len(self.shared)} task token(s) the model lacks read as the model's "
                     f"{self.unk} (its probability shared equally with the task's {self.unk}: "
                     f"{self.shared[:3]})")
        return line


def unk_folding(model_vocab: Sequence[str], task_vocab: Sequence[str], unk: str
                ) -> UnkFolding:
    """Every model word the task lacks is folded into the task's ``unk``: log p(unk) is the
    log-sum-exp of the model's log-probabilities of those words (and of the model's own
    ``unk``, if it has one); every other task token takes the model's log-probability of
    the same word. The task's ``unk`` is embedded as the model's ``unk`` or, without one,
    as the mean of the folded words' rows.

    A task token the model lacks is an error naming it, unless the model has an ``unk`` to
    read it as: then that token and the task's ``unk`` share the model's ``unk``
    probability equally (so the outputs still sum to 1)."""
    rows = {t: i for i, t in enumerate(model_vocab)}
    if len(rows) != len(model_vocab):
        raise ValueError("the model vocabulary lists a token twice")
    if unk not in task_vocab:
        raise ValueError(f"the task's vocabulary has no {unk!r} to fold the model's other words "
                         "into; drop --fold-unk")
    task_set = set(task_vocab)
    model_unk = rows.get(unk)
    fold = tuple(i for i, w in enumerate(model_vocab) if w not in task_set)
    shared = tuple(t for t in task_vocab if t not in rows and t != unk)
    if shared and model_unk is None:
        raise ValueError(f"{len(shared)} task token(s) are not in the model's vocabulary, which "
                         f"has no {unk} to read them as: {list(shared[:5])}; the task must "
                         "tokenize the text the way the model was trained (check its lower/"
                         "max_vocab/split_punct settings)")
    if not fold and model_unk is None:
        raise ValueError(f"every model word is in the task's vocabulary and the model has no "
                         f"{unk}: nothing to fold into the task's {unk}; drop --fold-unk")
    share = -math.log(1 + len(shared))
    reads: list[tuple[int | None, float, tuple[int, ...]]] = []  # (source, offset, embed)
    for t in task_vocab:
        row = rows.get(t) if t != unk else None
        if row is not None:
            reads.append((row, 0.0, (row,)))
        elif model_unk is not None:
            reads.append((model_unk, share, (model_unk,)))
        else:  # the task's unk, from the folded words alone
            reads.append((None, 0.0, fold))
    source, offset, embed = zip(*reads)
    mapped = sum(t in rows for t in task_vocab)
    return UnkFolding(len(model_vocab), source, offset, fold, list(task_vocab).index(unk),
                      embed, mapped, shared, unk)


def _fold_vocab(task: Any, vocab: "str | os.PathLike[str]", emb: Tensor | None,
                head_w: Tensor | None) -> tuple[Tensor | None, UnkFolding, dict[str, Any]]:
    """The task-ordered embedding and the folding of ``--fold-unk``."""
    task_vocab, model_vocab = _vocabs(task, vocab, emb, "--vocab and --fold-unk")
    if task_vocab.unk is None:
        raise ValueError(f"task {task.name!r} has no unknown token to fold the model's other "
                         "words into; drop --fold-unk")
    folding = unk_folding(model_vocab, task_vocab.itos, task_vocab.unk)
    if head_w is None or int(head_w.shape[0]) != len(model_vocab):
        rows = "no head" if head_w is None else f"a head of {int(head_w.shape[0])} rows"
        raise ValueError(f"--fold-unk folds a head over the model's {len(model_vocab)} words; "
                         f"the model has {rows}")
    if emb is not None:
        emb = torch.stack([emb[list(rows)].mean(0) for rows in folding.embed])
    log.info("%s", folding.summary())
    return emb, folding, {"vocab": {"file": str(Path(vocab).resolve()),
                                    "model_tokens": len(model_vocab),
                                    "task_tokens": len(task_vocab.itos), "never_seen": [],
                                    "folded_into_unk": len(folding.fold),
                                    "mapped": folding.mapped,
                                    "read_as_model_unk": list(folding.shared),
                                    "summary": folding.summary()}}


def _with_folded_head(net: Net, folding: UnkFolding) -> Net:
    """``net`` (its head over the model's words) with that head folded onto the task's
    tokens (:class:`memloss.models.heads.FoldedHead`)."""
    config = replace(net.config, output_size=len(folding.source), head_words=folding.words)
    ref = net.rnn.weight_hh_l0
    folded = Net(config).to(dtype=ref.dtype, device=ref.device)
    assert folded.head is not None
    folded.head.set_mapping(folding.source, folding.offset, folding.fold, folding.into)
    state = {("head.linear." + k[len("head."):] if k.startswith("head.") else k): v
             for k, v in net.state_dict().items()}
    state.update({f"head.{k}": v for k, v in folded.head.named_buffers()})
    folded.load_state_dict(state)
    return folded.eval()


def _sha256(path: "str | os.PathLike[str]") -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
