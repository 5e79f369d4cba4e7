"""The fetcher (deepfake_lab.data.fetch) against a real HTTP server on 127.0.0.1 serving archives made here:
a good data set unpacks and verifies; malicious, oversized, truncated and tampered downloads are refused
and leave nothing behind."""
from __future__ import annotations

import functools
import gzip
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


# ---- zip bombs, lying headers, empty layouts -------------------------------------------------------------
ZEROS_50MB = bytes(50 * 10**6)  # deflates to ~50 kB: a 1,000:1 zip bomb, kept small so tests stay fast


def _tar_gz(path: Path, entries: dict[str, bytes | None]) -> Path:
    """A .tar.gz of files (bytes) and folders (None)."""
    with tarfile.open(path, "w:gz") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def _lying_tar(path: Path, name: str, data: bytes, declared: int) -> Path:
    """A .tar.gz of one file whose header says ``declared`` bytes (with a valid checksum) while it holds ``data``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    raw = bytearray(buf.getvalue())
    raw[124:136] = b"%011o\0" % declared  # the ustar size field
    raw[148:156] = b" " * 8  # the checksum is summed with its own field as spaces
    raw[148:156] = b"%06o\0 " % sum(raw[:512])
    path.write_bytes(gzip.compress(bytes(raw)))
    return path


def _pix2pix(dest: Path, url: str, **kw) -> Path:
    return fetch_dataset("pix2pix", "facades", dest, base_url=url, progress=False, log=lambda m: None, **kw)


def test_a_zip_bomb_is_refused_by_its_compression_ratio_before_anything_is_written(server, tmp_path):
    """The case of the issue, scaled down: one member of zeros beside the empty folders of the layout."""
    root, url = server
    bomb = {"horse2zebra/trainA/1.png": ZEROS_50MB,
            **{f"horse2zebra/{part}/": b"" for part in ("trainB", "testA", "testB")}}
    archive = _zip(root / "datasets" / "horse2zebra.zip", bomb)
    assert archive.stat().st_size < 100_000
    with pytest.raises(FetchError, match=r"horse2zebra.zip: refused: entry 'horse2zebra/trainA/1.png' unpacks to "
                                         r"48 MiB from [\d,]+ bytes \(\d,\d{3}:1\), over the compression-ratio "
                                         r"limit of 100:1 .*not an official data set.*nothing was extracted"):
        _fetch("horse2zebra", tmp_path / "data", url)
    assert _leftovers(tmp_path / "data") == []
    # the ratio is a limit of its own, not the size: a generous size limit does not let it through
    with pytest.raises(FetchError, match="compression-ratio limit of 100:1"):
        safe_extract(archive, tmp_path / "out", Limits(total_bytes=2**40))
    # and it can be raised for an archive one trusts
    assert safe_extract(archive, tmp_path / "out", Limits(max_ratio=10_000)) == 1
    assert (tmp_path / "out" / "horse2zebra" / "trainA" / "1.png").stat().st_size == len(ZEROS_50MB)


def test_many_small_bombs_are_refused_by_the_ratio_of_the_whole_archive(server, tmp_path):
    root, url = server
    # each member is under the 16 MiB that is exempt from the per-member ratio; together they are not
    members = {f"mini/trainA/{i}.png": bytes(8 * 2**20) for i in range(4)}
    archive = _zip(tmp_path / "many.zip", members)
    with pytest.raises(FetchError, match=r"many.zip: refused: it would unpack to 32 MiB from [\d,]+ bytes "
                                         r"\(\d,\d{3}:1\), over the compression-ratio limit of 100:1"):
        safe_extract(archive, tmp_path / "out")
    # a tar.gz says nothing about each member's compressed size: the whole archive is held to the ratio
    _tar_gz(root / "datasets" / "facades.tar.gz", {"facades/train/1.jpg": ZEROS_50MB})
    with pytest.raises(FetchError, match=r"facades.tar.gz: refused: it would unpack to 48 MiB from [\d,]+ bytes "
                                         r"\(\d,\d{3}:1\), over the compression-ratio limit of 100:1"):
        _pix2pix(tmp_path / "data", url)
    assert _leftovers(tmp_path / "data") == [] and not (tmp_path / "out").exists()


def test_max_gb_sets_the_unpacked_limit_of_the_archive_and_of_each_file(server, tmp_path, capsys):
    # the per-file cap follows the total unless set lower; it is no longer a fixed 2 GiB
    assert Limits().file_cap == Limits().total_bytes == 40 * 2**30
    assert Limits(total_bytes=100 * 2**30).file_cap == 100 * 2**30
    assert Limits(total_bytes=100 * 2**30, file_bytes=2**30).file_cap == 2**30
    assert Limits(total_bytes=2**20, file_bytes=2**30).file_cap == 2**20
    root, url = server
    # 10 MiB of zeros: under the size exempt from the ratio, over what --max-gb 0.004 lets a fetch unpack
    _zip(root / "datasets" / "mini.zip", {**_official_entries(), "mini/trainA/big.png": bytes(10 * 2**20)})
    dest = tmp_path / "data"
    common = ["fetch", "cyclegan", "mini", "--dest", str(dest), "--mirror", url, "--no-progress"]
    assert cli.main([*common, "--max-gb", "0.004"]) == 2
    err = capsys.readouterr().err.strip()
    assert "mini.zip: refused: it would unpack to 0.01 GiB, over the limit of 0.01 GiB" in err
    assert "raise --max-gb" in err and "\n" not in err
    assert _leftovers(dest) == []
    assert cli.main([*common, "--max-gb", "0.01"]) == 0
    assert (dest / "mini" / "trainA" / "big.png").stat().st_size == 10 * 2**20


def test_a_member_that_streams_more_than_its_header_declares_is_stopped(tmp_path, monkeypatch):
    """zipfile itself stops at the declared size; should a reader ever trust the data instead, the byte
    count while streaming stops it at the first chunk past the header, before that chunk is written."""
    archive = _zip(tmp_path / "mini.zip", _official_entries())
    handed_out = []

    class Endless(io.RawIOBase):  # a member that never ends
        def readable(self):
            return True

        def read(self, n=-1):
            handed_out.append(n)
            return bytes(n)

    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, info, *a, **kw: (
        Endless() if getattr(info, "filename", info) == "mini/testA/1.png" else real_open(self, info, *a, **kw)))
    declared = len(_official_entries()["mini/testA/1.png"])
    with pytest.raises(FetchError, match=rf"entry 'mini/testA/1.png' holds more than the {declared:,} bytes its "
                                         r"header declares \(stopped at 1,048,576\).*not an official data set"):
        safe_extract(archive, tmp_path / "out")
    assert handed_out == [2**20]  # one chunk read, none written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mini.zip"]  # no partial output, no temporary folder


def test_tar_headers_that_lie_about_a_size_are_refused_and_leave_nothing(server, tmp_path):
    root, url = server
    served = root / "datasets" / "facades.tar.gz"
    # the header claims 50 MB, the archive holds 1 kB: it ends inside the entry
    _lying_tar(served, "facades/train/1.jpg", _png_bytes(0)[:1024], declared=50 * 10**6)
    with pytest.raises(FetchError, match="facades.tar.gz: corrupt archive .*not the official file; download it again"):
        _pix2pix(tmp_path / "data", url)
    assert _leftovers(tmp_path / "data") == []
    # the header claims 1 kB of a 3 MiB file: tarfile would stop listing at the rest of the data and keep 1 kB
    _lying_tar(served, "facades/train/1.jpg", np.random.default_rng(0).bytes(3 * 2**20), declared=1024)
    with pytest.raises(FetchError, match="facades.tar.gz: refused: after entry 'facades/train/1.jpg' comes data that "
                                         "is not a tar header"):
        _pix2pix(tmp_path / "data", url)
    assert _leftovers(tmp_path / "data") == []  # the 1 kB written before the check is gone too


def test_a_refusal_midway_removes_the_partial_output_and_leaves_the_target_as_it_was(tmp_path):
    entries = _official_entries()
    last = list(entries)[-1]
    archive = tmp_path / "mini.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    raw = bytearray(archive.read_bytes())
    at = raw.index(entries[last]) + 100
    raw[at] ^= 0xFF  # one byte of the last member: the CRC fails after seven files were written
    archive.write_bytes(bytes(raw))
    target = tmp_path / "out"
    target.mkdir()  # an empty folder given as the target stays, empty
    with pytest.raises(FetchError, match="mini.zip: corrupt archive .*Bad CRC-32"):
        safe_extract(archive, target)
    assert target.is_dir() and not any(target.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mini.zip", "out"]


@pytest.mark.parametrize("kind, names, message", [
    ("cyclegan", ["trainA/1.png", "trainB/", "testA/", "testB/readme.txt"], "trainB/, testA/, testB/ hold no images"),
    ("cyclegan", ["trainA/1.png", "trainB/1.png", "testA/1.png", "testB/"], "testB/ holds no images"),
    ("pix2pix", ["train/", "val/1.jpg"], "train/ holds no images"),
])
def test_layouts_with_empty_folders_are_not_kept(server, tmp_path, kind, names, message):
    """Folders (names ending in /), images, and a text file that is not an image."""
    root, url = server
    top = "horse2zebra" if kind == "cyclegan" else "facades"
    entries = {f"{top}/{n}": None if n.endswith("/") else b"not an image" if n.endswith(".txt") else _png_bytes(i)
               for i, n in enumerate(names)}
    if kind == "cyclegan":
        _zip(root / "datasets" / "horse2zebra.zip", {k: v or b"" for k, v in entries.items()})
        fetch = lambda: _fetch("horse2zebra", tmp_path / "data", url)  # noqa: E731
    else:
        _tar_gz(root / "datasets" / "facades.tar.gz", entries)
        fetch = lambda: _pix2pix(tmp_path / "data", url)  # noqa: E731
    with pytest.raises(FetchError, match=rf"unpacked, but {message} \(.png, .jpg, ...\); not the official data set, "
                                         "so it was not kept"):
        fetch()
    assert _leftovers(tmp_path / "data") == []
