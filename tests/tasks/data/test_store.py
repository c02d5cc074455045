"""fetch() against a local HTTP server: good, corrupt, truncated, offline; existing files kept."""
from __future__ import annotations

import hashlib
import http.server
import logging
import socket
import threading
import time
from pathlib import Path

import pytest

from memloss.cli import main
from memloss.tasks.data import store
from memloss.tasks.data.errors import DataError
from memloss.tasks.data.store import (DATASETS, Dataset, FetchError, RemoteFile, data_dir, data_path,
                              fetch, verify_file)

GOOD = b"the quick brown fox\njumps over the lazy dog\n" * 50
OTHER = b"x" * 700 + b"\n"


@pytest.fixture()
def server(tmp_path):
    """Serves tmp_path/www on 127.0.0.1; /truncated/NAME sends half of NAME but announces
    its full length, then closes the connection."""
    www = tmp_path / "www"
    www.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(www), **k)

        def log_message(self, *a):  # keep test output quiet
            pass

        def do_GET(self):
            if self.path.startswith("/truncated/"):
                data = (www / self.path.split("/")[-1]).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def spec(name: str, urls, data: bytes = GOOD, **kw) -> RemoteFile:
    return RemoteFile(name, tuple(urls), sha256=hashlib.sha256(data).hexdigest(), **kw)


def leftovers(d: Path) -> list[str]:
    return [p.name for p in d.iterdir() if p.name.endswith(".part")] if d.exists() else []


def test_good_download_verifies_and_lands(server, tmp_path):
    www, base = server
    (www / "a.txt").write_bytes(GOOD)
    (www / "b.txt").write_bytes(OTHER)
    ds = Dataset("t", "test", (
        spec("a.txt", [f"{base}/a.txt"], lines=GOOD.count(b"\n"), size=len(GOOD)),
        RemoteFile("b.txt", (f"{base}/b.txt",), md5=hashlib.md5(OTHER).hexdigest())))
    out = tmp_path / "data"
    seen = []
    assert fetch(ds, out, on_file=lambda n, s: seen.append((n, s))) == out
    assert (out / "a.txt").read_bytes() == GOOD and (out / "b.txt").read_bytes() == OTHER
    assert seen == [("a.txt", "downloaded"), ("b.txt", "downloaded")]
    assert leftovers(out) == []


def test_corrupt_download_is_deleted_and_named(server, tmp_path):
    www, base = server
    (www / "a.txt").write_bytes(GOOD.replace(b"fox", b"cat"))  # same size, wrong bytes
    ds = Dataset("t", "test", (spec("a.txt", [f"{base}/a.txt"]),))
    out = tmp_path / "data"
    with pytest.raises(FetchError, match=r"a\.txt.*checksum mismatch: sha256"):
        fetch(ds, out)
    assert not (out / "a.txt").exists() and leftovers(out) == []


def test_truncated_download_is_deleted_and_named(server, tmp_path):
    www, base = server
    (www / "a.txt").write_bytes(GOOD)
    ds = Dataset("t", "test", (spec("a.txt", [f"{base}/truncated/a.txt"]),))
    out = tmp_path / "data"
    with pytest.raises(FetchError, match=r"a\.txt.*truncated"):
        fetch(ds, out)
    assert not (out / "a.txt").exists() and leftovers(out) == []


def test_size_check_catches_a_short_file_without_checksum(server, tmp_path):
    www, base = server
    (www / "a.txt").write_bytes(GOOD[:100])
    ds = Dataset("t", "test", (RemoteFile("a.txt", (f"{base}/a.txt",), size=len(GOOD)),))
    with pytest.raises(FetchError, match=r"truncated: 100 bytes, expected"):
        fetch(ds, tmp_path / "data")


def test_bad_mirror_falls_back_to_the_next_url(server, tmp_path, caplog):
    www, base = server
    (www / "bad.txt").write_bytes(OTHER)
    (www / "a.txt").write_bytes(GOOD)
    ds = Dataset("t", "test", (spec("a.txt", [f"{base}/bad.txt", f"{base}/a.txt"]),))
    with caplog.at_level(logging.WARNING, logger="memloss.tasks.data.store"):
        out = fetch(ds, tmp_path / "data")
    assert (out / "a.txt").read_bytes() == GOOD
    assert any("checksum mismatch" in r.getMessage() for r in caplog.records)


def test_offline_fails_at_once_naming_files_and_place(tmp_path):
    url = closed_port_url()
    ds = Dataset("t", "test", (spec("a.txt", [f"{url}/a.txt"]), spec("b.txt", [f"{url}/b.txt"])),
                 homepage="https://example.org/t")
    out = tmp_path / "data" / "t"
    t0 = time.monotonic()
    with pytest.raises(FetchError) as err:
        fetch(ds, out, timeout=2.0)
    assert time.monotonic() - t0 < 5.0  # generous: connection refused is immediate
    msg = str(err.value)
    assert f"place these files by hand in {out}" in msg
    assert "a.txt" in msg and "b.txt" in msg and "MEMLOSS_DATA" in msg
    assert not out.exists()  # nothing left behind


def test_existing_good_file_is_kept_without_network(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "a.txt").write_bytes(GOOD)
    before = (out / "a.txt").stat().st_mtime_ns
    ds = Dataset("t", "test", (spec("a.txt", [f"{closed_port_url()}/a.txt"]),))
    seen = []
    fetch(ds, out, on_file=lambda n, s: seen.append(s))
    assert seen == ["ok"] and (out / "a.txt").stat().st_mtime_ns == before


def test_existing_file_survives_a_failed_redownload(server, tmp_path):
    www, base = server
    (www / "a.txt").write_bytes(OTHER)  # the server only has a corrupt copy
    out = tmp_path / "data"
    out.mkdir()
    (out / "a.txt").write_bytes(GOOD)
    ds = Dataset("t", "test", (spec("a.txt", [f"{base}/a.txt"]),))
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch(ds, out, force=True)
    assert (out / "a.txt").read_bytes() == GOOD and leftovers(out) == []


def test_bad_existing_file_is_replaced_only_by_a_good_copy(server, tmp_path):
    www, base = server
    (www / "a.txt").write_bytes(GOOD)
    out = tmp_path / "data"
    out.mkdir()
    (out / "a.txt").write_bytes(GOOD[:10])
    ds = Dataset("t", "test", (spec("a.txt", [f"{base}/a.txt"]),))
    fetch(ds, out)
    assert (out / "a.txt").read_bytes() == GOOD


def test_verify_file_reports(tmp_path):
    p = tmp_path / "f"
    assert verify_file(p, RemoteFile("f")) == "missing"
    p.write_bytes(b"")
    assert verify_file(p, RemoteFile("f")) == "empty"
    p.write_bytes(b"a\nb\n")
    assert verify_file(p, RemoteFile("f", lines=2)) is None
    assert verify_file(p, RemoteFile("f", lines=3)) == "2 lines, expected 3"
    assert verify_file(p, RemoteFile("f", size=2)) == "too long: 4 bytes, expected 2"
    assert "md5" in verify_file(p, RemoteFile("f", md5="0" * 32))


def test_manual_datasets_say_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMLOSS_DATA", str(tmp_path))
    with pytest.raises(FetchError, match=r"(?s)cannot be downloaded automatically.*eng\.train"):
        fetch("conll2003")
    with pytest.raises(ValueError, match="unknown data set 'nope'; valid choices: ptb"):
        fetch("nope")


def test_data_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMLOSS_DATA", str(tmp_path / "d"))
    assert data_dir() == tmp_path / "d" and data_path("ptb") == tmp_path / "d" / "ptb"
    monkeypatch.delenv("MEMLOSS_DATA")
    assert data_dir() == Path.home() / ".cache" / "memloss" / "data"
    with pytest.raises(ValueError, match="unknown data set"):
        data_path("imagenet")


def test_catalogue_has_verification_facts():
    for name in ("ptb", "mnist", "fashion-mnist"):
        ds = DATASETS.get(name)
        assert ds.downloadable
        for f in ds.files:
            assert f.urls and (f.sha256 or f.md5), f
            assert all(u.endswith(f.name) for u in f.urls)
    assert [f.lines for f in DATASETS.get("ptb").files] == [42068, 3370, 3761]


def test_cli_data_fetch_and_path(server, tmp_path, monkeypatch, capsys):
    www, base = server
    (www / "a.txt").write_bytes(GOOD)
    reg = store.Registry("data set")
    reg.register("toy")(Dataset("toy", "toy data", (spec("a.txt", [f"{base}/a.txt"]),)))
    reg.register("toy-offline")(Dataset("toy-offline", "offline", (
        spec("a.txt", [f"{closed_port_url()}/a.txt"]),)))
    monkeypatch.setattr(store, "DATASETS", reg)
    monkeypatch.setenv("MEMLOSS_DATA", str(tmp_path / "root"))
    assert main(["data", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "root")
    assert main(["data", "fetch", "toy", "--dir", str(tmp_path / "here")]) == 0
    out = capsys.readouterr().out
    assert "a.txt: downloaded, verified" in out
    assert (tmp_path / "here" / "a.txt").read_bytes() == GOOD
    assert main(["data", "fetch", "toy"]) == 0
    assert (tmp_path / "root" / "toy" / "a.txt").exists()
    assert main(["data", "fetch", "toy-offline"]) == 2
    err = capsys.readouterr().err
    assert "place these files by hand in" in err and "a.txt" in err


def test_fetch_error_is_a_data_error():
    assert issubclass(FetchError, DataError) and issubclass(DataError, ValueError)
