"""`memloss import`: a state dict trained outside memloss becomes a run directory that
`memloss eval`, `memloss probe` and `memloss report` use unchanged."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from memloss.cli import main
from memloss.importing import find_parts, import_state_dict, read_state_dict, vocab_permutation
from memloss.runs import load_run
from memloss.tasks import make_task

from .streams import write_corpus
from .wordlm import train_lm


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("lm"), tokens=400)


@pytest.fixture(scope="module")
def word_lm(corpus, tmp_path_factory):
    """The example-style LSTM LM, trained 20 steps, saved as its state dict and vocabulary."""
    model, vocab = train_lm(corpus)
    root = tmp_path_factory.mktemp("wlm")
    torch.save(model.state_dict(), root / "model.pt")
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return model, vocab, root


def _perplexity_of(model, vocab, task, batch_size=4):
    """The user's own model scored on the task's test stream (state carried, eval mode)."""
    to_model = torch.tensor([vocab.index(t) if t in vocab else 0 for t in task.vocab.itos])
    nll, count, hidden = 0.0, 0, None
    with torch.no_grad():
        for batch in task.batches("test", batch_size):
            x, y = to_model[batch.inputs].t(), to_model[batch.targets].t()
            out, hidden = model(x, hidden)
            nll += float(F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1),
                                         reduction="sum"))
            count += y.numel()
    return math.exp(nll / count)


def _import_args(root, corpus, out, *extra):
    return ["import", str(root / "model.pt"), "--task", "ptb-word", "--set",
            f"task.root={corpus}", "--set", "task.bptt=5", "--scheme", "zaremba:p=0.2",
            "--vocab", str(root / "vocab.txt"), "--out", str(out), *extra]


def test_word_language_model_goes_through_eval_probe_and_report(word_lm, corpus, tmp_path,
                                                                capsys):
    model, vocab, root = word_lm
    run = tmp_path / "run"
    assert main(_import_args(root, corpus, run, "--cell", "lstm", "--layers", "2",
                             "--hidden-size", "10")) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["net"]["scheme"] == "zaremba:p=0.2,scaling=inverted"
    assert config["info"]["imported"]["parts"] == {"embedding": "encoder", "rnn": "rnn",
                                                   "head": "decoder"}
    assert config["info"]["imported"]["vocab"]["never_seen"] == ["<unk>"]
    # eval: the imported net scores the stream as the user's own model does
    assert main(["eval", str(run), "--batch-size", "4", "--mode", "deterministic",
                 "--mode", "mc", "--samples", "2"]) == 0
    final = json.loads((run / "final.json").read_text())
    task = load_run(run).task
    assert final["test"]["deterministic"]["perplexity"] == pytest.approx(
        _perplexity_of(model, vocab, task), rel=1e-5)
    assert final["test"]["mc"]["perplexity"] > 0
    # probe and report, unchanged
    assert main(["probe", str(run), "--probe", "state-decay", "--probe", "mask-audit",
                 "--probe", "test-time-scaling", "--set", "state-decay:samples=2",
                 "--set", "mask-audit:draws=4", "--set", "test-time-scaling:samples=2",
                 "--set", "test-time-scaling:batch_size=4",
                 "--set", "test-time-scaling:max_batches=1000"]) == 0
    audit = pd.read_csv(run / "diagnostics" / "mask-audit.csv")
    assert set(audit["mask"].dropna()) == {"l0.input", "l1.input", "output"}
    tts = json.loads((run / "diagnostics" / "test-time-scaling.json").read_text())
    steps = sum(b.inputs.shape[1] for b in task.batches("test", 4))  # the whole stream
    assert tts["summary"]["measured"]["test"] == {
        str(steps): f"{steps} steps per stream column ("
                    f"{len(list(task.batches('test', 4)))} segment(s) of up to 5 steps, "
                    "state carried)"}
    assert tts["summary"]["table"]["test"]["deterministic"][str(steps)] == pytest.approx(
        final["test"]["deterministic"]["perplexity"], rel=1e-5)
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 0
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "mask-audit" in html and "state-decay" in html
    assert (tmp_path / "report.pdf").stat().st_size > 0
    capsys.readouterr()


def test_safetensors_tied_weights_and_gru(corpus, tmp_path):
    model, vocab = train_lm(corpus, "GRU", steps=5, layers=1)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    save_file(state, str(tmp_path / "gru.safetensors"))
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    run = import_state_dict(tmp_path / "gru.safetensors", tmp_path / "run", task="ptb-word",
                            task_params={"root": str(corpus), "bptt": 5},
                            vocab=tmp_path / "vocab.json")
    net = load_run(run).net
    assert net.config.cell == "gru" and net.config.num_layers == 1
    task = load_run(run).task
    from memloss.tasks import evaluate
    assert evaluate(net, task, batch_size=4)["perplexity"] == pytest.approx(
        _perplexity_of(model, vocab, task), rel=1e-5)


def test_a_classifier_layout_with_float_input(tmp_path):
    """embedding-free classifier: lstm + fc, float features, no vocabulary needed."""
    task = make_task("temporal-order", length=8, train_size=8, valid_size=8, test_size=16)
    sizes = task.net_kwargs()
    lstm = torch.nn.LSTM(sizes["input_size"], 5, batch_first=True)
    fc = torch.nn.Linear(5, sizes["output_size"])
    state = {**{f"lstm.{k}": v for k, v in lstm.state_dict().items()},
             **{f"fc.{k}": v for k, v in fc.state_dict().items()}}
    torch.save({"model_state_dict": state, "epoch": 3}, tmp_path / "ckpt.pt")
    run = import_state_dict(tmp_path / "ckpt.pt", tmp_path / "run", task="temporal-order",
                            task_params={"length": 8, "train_size": 8, "valid_size": 8,
                                         "test_size": 16})
    net = load_run(run).net
    x = next(task.batches("test", 16)).inputs
    with torch.no_grad():
        torch.testing.assert_close(net(x)[0], fc(lstm(x)[0]))


def test_bad_files_and_layouts_are_one_clear_error(word_lm, corpus, tmp_path, capsys):
    model, vocab, root = word_lm
    torch.save(model, tmp_path / "whole.pt")  # a pickled module, not a state dict
    with pytest.raises(ValueError, match="pickled Python objects.*state_dict"):
        read_state_dict(tmp_path / "whole.pt")
    assert main(["import", str(tmp_path / "whole.pt"), "--task", "ptb-word", "--out",
                 str(tmp_path / "r0")]) == 2
    assert "state_dict()" in capsys.readouterr().err
    extra = dict(model.state_dict(), **{"norm.weight": torch.ones(10)})
    torch.save(extra, tmp_path / "extra.pt")
    with pytest.raises(ValueError, match="outside an embedding.*norm.weight"):
        import_state_dict(tmp_path / "extra.pt", tmp_path / "r1", task="ptb-word",
                          task_params={"root": str(corpus)}, vocab=root / "vocab.txt")
    with pytest.raises(ValueError, match="--cell gru but the weights are a lstm"):
        import_state_dict(root / "model.pt", tmp_path / "r2", task="ptb-word", cell="gru",
                          task_params={"root": str(corpus)}, vocab=root / "vocab.txt")
    with pytest.raises(ValueError, match="vocab_size.*--vocab"):
        import_state_dict(root / "model.pt", tmp_path / "r3", task="ptb-word",
                          task_params={"root": str(corpus)})
    with pytest.raises(ValueError, match="not in the task's"):
        vocab_permutation(["a", "b", "zebra"], ["<unk>", "a", "b"])
    bi = torch.nn.LSTM(3, 4, bidirectional=True).state_dict()
    with pytest.raises(ValueError, match="bidirectional"):
        from memloss.diagnostics.external import net_from_weights
        net_from_weights("lstm", bi)
    with pytest.raises(ValueError, match="several recurrent stacks"):
        find_parts({"a.weight_ih_l0": torch.zeros(4, 2), "a.weight_hh_l0": torch.zeros(4, 1),
                    "b.weight_ih_l0": torch.zeros(4, 2), "b.weight_hh_l0": torch.zeros(4, 1)})
    assert main(_import_args(root, corpus, tmp_path / "ok")) == 0
    assert main(_import_args(root, corpus, tmp_path / "ok")) == 2  # already a run there
    assert "already holds a run" in capsys.readouterr().err


def test_import_into_a_directory_another_writer_holds_fails_and_writes_nothing(
        word_lm, corpus, tmp_path, capsys):
    from tests.faults.cases import holding_lock, reap

    root = word_lm[2]
    out = tmp_path / "busy"
    out.mkdir()
    holder = holding_lock(out)
    try:
        assert main(_import_args(root, corpus, out)) == 2
    finally:
        reap(holder)
    err = capsys.readouterr().err
    assert f"being written by process {holder}" in err and "Traceback" not in err
    assert not (out / "config.json").exists() and not (out / "model.safetensors").exists()


# --fold-unk: a model whose dictionary covers train, valid and test (the official example's)
# scored on a task that keeps its max_vocab most frequent words and <unk>
FOLD_TASK = {"bptt": 5, "max_vocab": 8}


def _folded_by_hand(model, vocab, task_vocab, h):
    """The task's probabilities from the model's softmax, summed by hand in float64: each
    task token takes its word's probability, <unk> the sum over the words the task lacks."""
    p = torch.softmax(model.decoder(h).double(), dim=-1)
    cols = [p[..., vocab.index(t)] if t != "<unk>" else
            p[..., [i for i, w in enumerate(vocab) if w not in task_vocab]].sum(-1)
            for t in task_vocab]
    return torch.stack(cols, dim=-1)


def test_fold_unk_sums_the_model_softmax_into_unk(word_lm, corpus, tmp_path, caplog):
    model, vocab, root = word_lm
    with caplog.at_level("INFO", logger="memloss.importing"):
        assert main(_import_args(root, corpus, tmp_path / "run", "--fold-unk", "--set",
                                 "task.max_vocab=8")) == 0
    run = load_run(tmp_path / "run")
    itos = list(run.task.vocab.itos)
    lacking = [w for w in vocab if w not in itos]
    assert len(itos) == 8 and len(lacking) == len(vocab) - 7 > 0  # the model has no <unk>
    assert (f"{len(lacking)} model word(s) the task lacks folded into the task's <unk>; 7 task "
            "token(s) mapped") in caplog.text
    info = json.loads((tmp_path / "run" / "config.json").read_text())["info"]["imported"]
    assert info["vocab"]["folded_into_unk"] == len(lacking) and info["vocab"]["mapped"] == 7
    h = torch.randn(6, 3, 10, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = run.net.head(h).double().exp()
        want = _folded_by_hand(model, vocab, itos, h)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    torch.testing.assert_close(got.sum(-1), torch.ones(6, 3, dtype=torch.float64), atol=1e-6,
                               rtol=0)
    # the task's <unk> reads as the mean embedding of the words folded into it
    torch.testing.assert_close(run.net.embedding.weight[itos.index("<unk>")],
                               model.encoder.weight[[vocab.index(w) for w in lacking]].mean(0))


def test_fold_unk_eval_perplexity_is_the_hand_computation(word_lm, corpus, tmp_path):
    model, vocab, root = word_lm
    run_dir = import_state_dict(root / "model.pt", tmp_path / "run", task="ptb-word",
                                task_params={"root": str(corpus), **FOLD_TASK},
                                vocab=root / "vocab.txt", fold_unk=True)
    assert main(["eval", str(run_dir), "--batch-size", "4", "--mode", "deterministic"]) == 0
    final = json.loads((run_dir / "final.json").read_text())
    task = load_run(run_dir).task
    itos = list(task.vocab.itos)
    lacking = [vocab.index(w) for w in vocab if w not in itos]
    # the user's model, its <unk> input the mean of the folded words' embeddings
    emb = torch.stack([model.encoder.weight[vocab.index(t)] if t != "<unk>" else
                       model.encoder.weight[lacking].mean(0) for t in itos])
    nll, count, hidden = 0.0, 0, None
    with torch.no_grad():
        for batch in task.batches("test", 4):
            out, hidden = model.rnn(emb[batch.inputs.t()], hidden)
            probs = _folded_by_hand(model, vocab, itos, out)
            nll -= float(probs.gather(-1, batch.targets.t().unsqueeze(-1)).log().sum())
            count += batch.targets.numel()
    assert (task.vocab.itos.index("<unk>") == 0
            and int((torch.cat([b.targets.flatten() for b in task.batches("test", 4)]) == 0)
                    .sum()) > 0)  # the test stream does hold <unk> targets
    assert final["test"]["deterministic"]["perplexity"] == pytest.approx(
        math.exp(nll / count), rel=1e-5)


def test_fold_unk_mapping_rules_and_errors(word_lm, corpus, tmp_path):
    from memloss.importing import unk_folding

    # a model <unk>: folded with the words the task lacks; a task word the model lacks reads
    # it, sharing its probability with the task's <unk>
    f = unk_folding(["<unk>", "a", "b", "zebra"], ["<unk>", "a", "c"], "<unk>")
    assert f.source == (0, 1, 0) and f.fold == (2, 3) and f.into == 0 and f.mapped == 2
    assert f.offset == pytest.approx((-math.log(2), 0.0, -math.log(2))) and f.shared == ("c",)
    assert f.embed == ((0,), (1,), (0,))
    from memloss.models.heads import FoldedHead
    head = FoldedHead(3, 4, 3)
    head.set_mapping(f.source, f.offset, f.fold, f.into)
    h = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        p = torch.softmax(head.linear(h).double(), -1)
        got = head(h).double().exp()
    want = torch.stack([p[:, 0] / 2 + p[:, 2] + p[:, 3], p[:, 1], p[:, 0] / 2], -1)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    # without a model <unk>, a task word the model lacks is an error naming it
    with pytest.raises(ValueError, match=r"1 task token\(s\) are not in the model's vocabulary.*"
                                         r"\['c'\]"):
        unk_folding(["a", "b", "zebra"], ["<unk>", "a", "c"], "<unk>")
    with pytest.raises(ValueError, match="nothing to fold.*drop --fold-unk"):
        unk_folding(["a", "b"], ["<unk>", "a", "b"], "<unk>")
    root = word_lm[2]
    with pytest.raises(ValueError, match="--fold-unk.*--vocab"):
        import_state_dict(root / "model.pt", tmp_path / "r", task="ptb-word",
                          task_params={"root": str(corpus), **FOLD_TASK}, fold_unk=True)
