"""The fetcher (deepfake_lab.data.fetch) against a real HTTP server on 127.0.0.1 serving archives made here:
a good data set unpacks and verifies; malicious, oversized, truncated and tampered downloads are refused
and leave nothing behind."""
from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import stat
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepfake_lab import cli
from deepfake_lab.data.fetch import (FetchError, Limits, dataset_path, fetch_dataset, fetch_pretrained, safe_extract)


def _png_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _zip(path: Path, entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _official_entries(name: str = "mini") -> dict[str, bytes]:
    return {f"{name}/{part}/{i}.png": _png_bytes(k * 10 + i)
            for k, part in enumerate(("trainA", "trainB", "testA", "testB")) for i in range(2)}


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        if self.path.startswith("/cut/"):  # promises 10,000 bytes, sends 100, hangs up
            self.send_response(200)
            self.send_header("Content-Length", "10000")
            self.end_headers()
            self.wfile.write(b"x" * 100)
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    """(folder served, base URL): an HTTP server on 127.0.0.1 for this test only."""
    root = tmp_path / "www"
    (root / "datasets").mkdir(parents=True)
    (root / "pretrained_models").mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _fetch(name, dest, url, **kw):
    return fetch_dataset("cyclegan", name, dest, base_url=url, progress=False, log=lambda m: None, **kw)


def _leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


def test_a_good_data_set_downloads_verifies_and_unpacks(server, tmp_path):
    root, url = server
    _zip(root / "datasets" / "mini.zip", _official_entries())
    dest = tmp_path / "data"
    path = _fetch("mini", dest, url)
    assert path == dataset_path("cyclegan", "mini", dest) == dest / "mini"
    for part in ("trainA", "trainB", "testA", "testB"):
        assert len(list((path / part).glob("*.png"))) == 2
    record = (path / ".fetch.json").read_text()
    digest = hashlib.sha256((root / "datasets" / "mini.zip").read_bytes()).hexdigest()
    assert json.loads(record)["sha256"] == digest and json.loads(record)["files"] == 8
    assert _leftovers(dest) == ["mini"]  # no archive, no temporary folder
    # a second fetch reuses it; a pinned checksum is accepted
    assert _fetch("mini", dest, url) == path
    assert _fetch("mini", dest, url, sha256=digest, force=True) == path


def test_tampered_download_fails_the_pinned_checksum_and_is_deleted(server, tmp_path):
    root, url = server
    _zip(root / "datasets" / "mini.zip", _official_entries())
    with pytest.raises(FetchError, match="SHA-256 .* is not the expected 00ff"):
        _fetch("mini", tmp_path / "data", url, sha256="00ff" * 16)
    assert _leftovers(tmp_path / "data") == []


@pytest.mark.parametrize("evil, message", [
    ({"mini/../../../escape.txt": b"pwned"}, "outside the target folder"),
    ({"/tmp/escape.txt": b"pwned"}, "absolute path"),
    ({"C:/escape.txt": b"pwned"}, "absolute path"),
])
def test_path_escapes_are_refused_and_nothing_is_written(server, tmp_path, evil, message):
    root, url = server
    _zip(root / "datasets" / "mini.zip", {**_official_entries(), **evil})
    with pytest.raises(FetchError, match=message):
        _fetch("mini", tmp_path / "data", url)
    assert not list(tmp_path.rglob("escape.txt")) and not Path("/tmp/escape.txt").exists()
    assert _leftovers(tmp_path / "data") == []


def test_symlinks_in_a_zip_are_refused(server, tmp_path):
    root, url = server
    _zip(root / "datasets" / "mini.zip", _official_entries(), symlinks={"mini/trainA/link.png": "/etc/passwd"})
    with pytest.raises(FetchError, match="symbolic link"):
        _fetch("mini", tmp_path / "data", url)
    assert _leftovers(tmp_path / "data") == []


@pytest.mark.parametrize("link", ["sym", "hard"])
def test_links_in_a_tar_are_refused(server, tmp_path, link):
    root, url = server
    with tarfile.open(root / "datasets" / "facades.tar.gz", "w:gz") as tf:
        data = _png_bytes(1)
        info = tarfile.TarInfo("facades/train/1.jpg")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        bad = tarfile.TarInfo("facades/train/2.jpg")
        bad.type = tarfile.SYMTYPE if link == "sym" else tarfile.LNKTYPE
        bad.linkname = "/etc/passwd"
        tf.addfile(bad)
    with pytest.raises(FetchError, match=f"{'symbolic' if link == 'sym' else 'hard'} link"):
        fetch_dataset("pix2pix", "facades", tmp_path / "data", base_url=url, progress=False, log=lambda m: None)
    assert _leftovers(tmp_path / "data") == []


def test_size_limits_refuse_big_archives_before_unpacking(tmp_path):
    archive = _zip(tmp_path / "big.zip", {"mini/trainA/zeros.bin": bytes(3 * 2**20)})  # 3 MiB, ~3 kB zipped
    with pytest.raises(FetchError, match="over the limit of 0.00 GiB"):
        safe_extract(archive, tmp_path / "out1", Limits(total_bytes=2**20))
    with pytest.raises(FetchError, match="over the per-file limit of 1 MiB"):
        safe_extract(archive, tmp_path / "out2", Limits(file_bytes=2**20))
    with pytest.raises(FetchError, match="1 files, over the limit of 0"):
        safe_extract(archive, tmp_path / "out3", Limits(files=0))
    assert not any((tmp_path / f"out{i}").exists() for i in (1, 2, 3))
    assert safe_extract(archive, tmp_path / "ok") == 1


def test_download_size_cap(server, tmp_path):
    root, url = server
    _zip(root / "datasets" / "mini.zip", _official_entries())
    with pytest.raises(FetchError, match="over the download limit"):
        _fetch("mini", tmp_path / "data", url, limits=Limits(download_bytes=100))


def test_wrong_layout_is_not_kept(server, tmp_path):
    root, url = server
    _zip(root / "datasets" / "horse2zebra.zip", {"horse2zebra/images/1.png": _png_bytes(0)})
    with pytest.raises(FetchError, match="lacks trainA, trainB, testA, testB .found: images"):
        _fetch("horse2zebra", tmp_path / "data", url)
    assert _leftovers(tmp_path / "data") == []


def test_http_errors_cut_connections_and_bad_names_say_what_to_do(server, tmp_path):
    root, url = server
    with pytest.raises(FetchError, match="HTTP 404"):
        _fetch("horse2zebra", tmp_path / "data", url)  # not on this server
    with pytest.raises(FetchError, match="ended after 100 of 10,000 bytes"):
        _fetch("mini", tmp_path / "data", f"{url}/cut")
    with pytest.raises(FetchError, match="not one of the official data sets: apple2orange"):
        _fetch("horses", tmp_path / "data", url)
    with pytest.raises(FetchError, match="Cityscapes licence"):
        _fetch("cityscapes", tmp_path / "data", url)
    with pytest.raises(FetchError, match="cannot reach the server"):
        _fetch("mini", tmp_path / "data", "http://127.0.0.1:9")  # nothing listens on the discard port
    assert _leftovers(tmp_path / "data") == []


def test_pretrained_model_is_checked_before_it_is_kept(server, tmp_path):
    from deepfake_lab.cyclegan import ResnetGenerator

    root, url = server
    torch.save(ResnetGenerator(ngf=4, n_blocks=2).state_dict(), root / "pretrained_models" / "horse2zebra.pth")
    path = fetch_pretrained("cyclegan", "horse2zebra", tmp_path / "models", base_url=url, progress=False,
                            log=lambda m: None)
    assert path == tmp_path / "models" / "horse2zebra.pth" and path.exists()

    class Evil:  # a pickle that would run code when loaded without weights_only
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"model.1.weight": Evil()}, root / "pretrained_models" / "zebra2horse.pth")
    with pytest.raises(FetchError, match="not a usable cyclegan generator .*refused"):
        fetch_pretrained("cyclegan", "zebra2horse", tmp_path / "models", base_url=url, progress=False,
                         log=lambda m: None)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["horse2zebra.pth"]


def test_command_line_fetch(server, tmp_path, capsys):
    root, url = server
    _zip(root / "datasets" / "mini.zip", _official_entries())
    dest = tmp_path / "data"
    assert cli.main(["fetch", "cyclegan", "mini", "--dest", str(dest), "--mirror", url, "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == str(dest / "mini")
    assert cli.main(["fetch", "cyclegan", "cityscapes", "--dest", str(dest), "--mirror", url]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("deepfake-lab: error: cityscapes: the Cityscapes licence") and "\n" not in err
    assert cli.main(["fetch", "pix2pix", "list"]) == 0
    assert "edges2shoes" in capsys.readouterr().out
