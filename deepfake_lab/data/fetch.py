"""Downloading the official CycleGAN and pix2pix data sets and pretrained models, safely.

    deepfake-lab fetch cyclegan horse2zebra                 # data set -> ~/.cache/deepfake_lab/datasets/horse2zebra
    deepfake-lab fetch cyclegan horse2zebra --pretrained    # model    -> ~/.cache/deepfake_lab/models/cyclegan/horse2zebra.pth
    deepfake-lab fetch pix2pix facades                      # data set (train/ val/ test/ of A|B pairs)
    deepfake-lab fetch cyclegan list                        # the official names

Files come from the authors' server (the URLs of the official download scripts, :data:`CYCLEGAN_URL`
and :data:`PIX2PIX_URL`; ``--mirror`` points elsewhere). Nothing in this package downloads anything
unless you run this command.

What "safely" means here:

* **verified download**: streamed to a ``.part`` file with a progress bar and renamed only when
  complete; the byte count must equal the server's ``Content-Length``; the SHA-256 is computed, printed
  and recorded (``--sha256`` makes it a check: the server publishes no checksums, so pin the one you got
  the first time); a size cap refuses a runaway download before it fills the disk;
* **safe unpacking** (zip and tar): every entry is checked *before* anything is written: no absolute
  paths, no ``..``, nothing that resolves outside the target folder, no symbolic or hard links, no
  device files; total size, single-file size (both set by ``--max-gb``) and file count are capped, and
  so is the compression ratio (unpacked : packed, 100:1 by default, per zip member and for the whole
  archive: a zip bomb squeezes 1000:1, JPEG/PNG images about 1:1). The bytes are counted again while
  they stream out, since headers can lie; zip CRCs are checked. Everything unpacks into a temporary
  folder that is renamed into place only when complete: one bad entry refuses the whole archive and
  nothing is left behind;
* **layout check**: a CycleGAN set must unpack to ``trainA trainB testA testB``, a pix2pix set to
  ``train/`` (+ ``val``/``test``), each required folder holding at least one image, before it replaces
  anything; a pretrained model must be a plain state dict (opened with ``weights_only=True``) that the
  lesson's importer recognises.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import http.client
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from . import DataError

__all__ = ["FetchError", "Limits", "CYCLEGAN_URL", "PIX2PIX_URL", "CYCLEGAN_DATASETS", "PIX2PIX_DATASETS",
           "CYCLEGAN_MODELS", "PIX2PIX_MODELS", "data_dir", "dataset_path", "model_path", "download", "safe_extract",
           "fetch_dataset", "fetch_pretrained"]

CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan"
PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix"

#: CycleGAN data sets (``{CYCLEGAN_URL}/datasets/{name}.zip``), as in the official download script
CYCLEGAN_DATASETS = ("apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo",
                     "ukiyoe2photo", "vangogh2photo", "maps", "facades", "iphone2dslr_flower", "ae_photos",
                     "grumpifycat", "mini", "mini_pix2pix", "mini_colorization")
#: pix2pix data sets (``{PIX2PIX_URL}/datasets/{name}.tar.gz``)
PIX2PIX_DATASETS = ("facades", "maps", "edges2shoes", "edges2handbags", "night2day")
#: pretrained CycleGAN generators (``{CYCLEGAN_URL}/pretrained_models/{name}.pth``)
CYCLEGAN_MODELS = ("horse2zebra", "zebra2horse", "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe",
                   "style_vangogh", "apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite",
                   "sat2map", "map2sat", "cityscapes_photo2label", "cityscapes_label2photo", "facades_photo2label",
                   "facades_label2photo", "iphone2dslr_flower")
#: pretrained pix2pix generators (``{PIX2PIX_URL}/models-pytorch/{name}.pth``)
PIX2PIX_MODELS = ("edges2shoes", "sat2map", "map2sat", "facades_label2photo", "day2night")

_CITYSCAPES = ("cityscapes: the Cityscapes licence does not allow redistribution, so the authors do not host it; "
               "download gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip from https://cityscapes-dataset.com "
               "and convert them with the official datasets/prepare_cityscapes_dataset.py")


class FetchError(DataError):
    """A download or archive that was refused; nothing unsafe or incomplete was left on disk."""


@dataclass(frozen=True)
class Limits:
    """Caps on what one fetch may download and unpack (the largest official set, edges2handbags, is ~8.6 GB).

    ``total_bytes`` caps what one archive unpacks to, and each single member of it too unless ``file_bytes``
    sets a lower per-file cap (``deepfake-lab fetch --max-gb G`` sets ``total_bytes`` to 2 G GiB, so the flag
    governs both). ``max_ratio`` caps unpacked : packed size, for each zip member and for the whole archive:
    the official sets hold JPEG/PNG images, which barely compress (about 1:1), while a zip bomb reaches 1000:1.
    A member or archive that unpacks to at most ``ratio_exempt_bytes`` is not held to the ratio: it cannot
    fill a disk, and a small text file or flat mask may well squeeze more than 100:1.
    """

    download_bytes: int = 20 * 2**30
    total_bytes: int = 40 * 2**30
    file_bytes: int | None = None
    files: int = 1_000_000
    max_ratio: float = 100.0
    ratio_exempt_bytes: int = 16 * 2**20

    @property
    def file_cap(self) -> int:
        """The per-file cap in force: ``file_bytes`` if set, never more than ``total_bytes``."""
        return self.total_bytes if self.file_bytes is None else min(self.file_bytes, self.total_bytes)


def data_dir() -> Path:
    """Where data sets and models go: ``$DEEPFAKE_LAB_CACHE`` or ``~/.cache/deepfake_lab``."""
    from ..settings import cache_dir

    return cache_dir()


def dataset_path(kind: str, name: str, dest: str | os.PathLike | None = None) -> Path:
    """Where ``fetch_dataset(kind, name)`` puts (or put) a data set: ``<dest>/<name>``, by default
    ``<cache>/datasets/<name>`` (pix2pix sets ``<cache>/datasets/pix2pix/<name>``: facades and maps exist
    in both layouts)."""
    if dest:
        return Path(dest).expanduser() / name
    base = data_dir() / "datasets"
    return base / "pix2pix" / name if kind == "pix2pix" else base / name


def model_path(kind: str, name: str, dest: str | os.PathLike | None = None) -> Path:
    """Where ``fetch_pretrained(kind, name)`` puts a model: ``<dest or cache/models/<kind>>/<name>.pth``."""
    base = Path(dest).expanduser() if dest else data_dir() / "models" / kind
    return base / f"{name}.pth"


def _check_name(kind: str, name: str, pretrained: bool) -> str:
    if kind not in ("cyclegan", "pix2pix"):
        raise FetchError(f"{kind!r}: use cyclegan or pix2pix")
    if name == "cityscapes":
        raise FetchError(_CITYSCAPES)
    names = {("cyclegan", False): CYCLEGAN_DATASETS, ("pix2pix", False): PIX2PIX_DATASETS,
             ("cyclegan", True): CYCLEGAN_MODELS, ("pix2pix", True): PIX2PIX_MODELS}[(kind, pretrained)]
    if name not in names:
        what = "pretrained models" if pretrained else "data sets"
        raise FetchError(f"{kind} {name!r}: not one of the official {what}: {', '.join(names)}")
    base = CYCLEGAN_URL if kind == "cyclegan" else PIX2PIX_URL
    if pretrained:
        return f"{base}/{'pretrained_models' if kind == 'cyclegan' else 'models-pytorch'}/{name}.pth"
    return f"{base}/datasets/{name}.{'zip' if kind == 'cyclegan' else 'tar.gz'}"


# --------------------------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------------------------
def download(url: str, dest: str | os.PathLike, sha256: str | None = None, limits: Limits = Limits(),
             progress: bool = True, timeout: float = 60.0) -> dict:
    """Stream ``url`` to ``dest`` (via ``dest.part``); returns ``{"url", "bytes", "sha256"}``.

    Refuses: schemes other than http(s), HTTP errors, a body longer than ``limits.download_bytes``, a body
    shorter than its ``Content-Length`` (a cut connection), and a SHA-256 other than ``sha256`` if given.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    if not re.match(r"^https?://", url):
        raise FetchError(f"{url}: only http:// and https:// URLs are fetched")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    request = urllib.request.Request(url, headers={"User-Agent": "deepfake_lab-fetch"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        raise FetchError(f"{url}: the server answered HTTP {err.code} ({err.reason}); check the name, or try later"
                         ) from err
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise FetchError(f"{url}: cannot reach the server ({reason}); without internet access, download the file "
                         "elsewhere, unpack it, and pass the folder with --data") from err
    h = hashlib.sha256()
    received = 0
    with response:
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        if expected is not None and expected > limits.download_bytes:
            raise FetchError(f"{url}: {expected / 2**30:.1f} GiB, over the download limit of "
                             f"{limits.download_bytes / 2**30:.1f} GiB")
        bar = tqdm(total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name,
                   disable=not progress, dynamic_ncols=True)
        try:
            with open(part, "wb") as f:
                while True:
                    try:
                        chunk = response.read(1 << 20)
                    except http.client.IncompleteRead as err:
                        chunk = err.partial  # the server closed early: keep the count for the message
                        received += len(chunk)
                        h.update(chunk)
                        f.write(chunk)
                        break
                    if not chunk:
                        break
                    received += len(chunk)
                    if received > limits.download_bytes:
                        raise FetchError(f"{url}: more than the download limit of "
                                         f"{limits.download_bytes / 2**30:.1f} GiB; stopped")
                    h.update(chunk)
                    f.write(chunk)
                    bar.update(len(chunk))
            if expected is not None and received != expected:
                raise FetchError(f"{url}: the connection ended after {received:,} of {expected:,} bytes; run the "
                                 "command again")
            digest = h.hexdigest()
            if sha256 and digest.lower() != sha256.lower():
                raise FetchError(f"{url}: SHA-256 {digest} is not the expected {sha256}; the file was deleted")
            os.replace(part, dest)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        finally:
            bar.close()
    return {"url": url, "bytes": received, "sha256": digest}


# --------------------------------------------------------------------------------------------
# Unpacking
# --------------------------------------------------------------------------------------------
#: what a refusal for size says to do
_RAISE_MAX_GB = "if this is the official archive, raise --max-gb (a fetch may unpack to twice that)"
#: what a refusal for compression ratio or a forged header says
_NOT_OFFICIAL = ("this is not an official data set (those hold JPEG/PNG images, which barely compress); fetch it from "
                 "the authors' server or a --mirror you trust")


def _size(n: int) -> str:
    """``512 MiB``, ``1.50 GiB``, ``3,000 bytes``: a size for a message."""
    if n >= 2**30:
        return f"{n / 2**30:.2f} GiB"
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n:,} bytes"


def _member_parts(name: str, archive: Path) -> list[str]:
    """The path components of an archive entry, or FetchError if it could land outside the target."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean):
        raise FetchError(f"{archive.name}: refused: entry {name!r} has an absolute path; nothing was extracted")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise FetchError(f"{archive.name}: refused: entry {name!r} would be written outside the target folder "
                         "(it contains '..'); nothing was extracted")
    return parts


@dataclass
class _Entry:
    parts: list[str]
    is_dir: bool
    size: int  # unpacked bytes, as the header declares them
    packed: int | None  # compressed bytes of this member (zip); None where the format has no such count (tar)
    source: object  # ZipInfo or TarInfo

    @property
    def name(self) -> str:
        return "/".join(self.parts)


def _zip_entries(zf: zipfile.ZipFile, archive: Path) -> Iterator[_Entry]:
    for info in zf.infolist():
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise FetchError(f"{archive.name}: refused: entry {info.filename!r} is a symbolic link; nothing was "
                             "extracted")
        if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) and stat.S_IFMT(mode):
            raise FetchError(f"{archive.name}: refused: entry {info.filename!r} is not a plain file or folder")
        yield _Entry(_member_parts(info.filename, archive), info.is_dir(), info.file_size, info.compress_size, info)


def _tar_entries(tf: tarfile.TarFile, archive: Path) -> Iterator[_Entry]:
    for member in tf.getmembers():
        if member.issym() or member.islnk():
            raise FetchError(f"{archive.name}: refused: entry {member.name!r} is a "
                             f"{'symbolic' if member.issym() else 'hard'} link; nothing was extracted")
        if not (member.isfile() or member.isdir()):
            raise FetchError(f"{archive.name}: refused: entry {member.name!r} is not a plain file or folder "
                             "(device, FIFO...); nothing was extracted")
        yield _Entry(_member_parts(member.name, archive), member.isdir(), member.size, None, member)


def _check_declared(archive: Path, entries: list[_Entry], packed_total: int, root: Path, limits: Limits) -> None:
    """Refuse, before anything is written, what the headers alone show to be unsafe or too big."""
    files = [e for e in entries if not e.is_dir]
    declared = sum(e.size for e in files)
    if len(files) > limits.files:
        raise FetchError(f"{archive.name}: refused: {len(files):,} files, over the limit of {limits.files:,}")
    if declared > limits.total_bytes:
        raise FetchError(f"{archive.name}: refused: it would unpack to {declared / 2**30:.2f} GiB, over the "
                         f"limit of {limits.total_bytes / 2**30:.2f} GiB; {_RAISE_MAX_GB}")
    for e in entries:
        path = root.joinpath(*e.parts)
        if os.path.commonpath([root, path.resolve()]) != str(root):
            raise FetchError(f"{archive.name}: refused: entry {e.name!r} resolves outside the target folder; "
                             "nothing was extracted")
        if e.size > limits.file_cap:
            raise FetchError(f"{archive.name}: refused: entry {e.name!r} is {e.size / 2**20:.0f} MiB, over the "
                             f"per-file limit of {limits.file_cap / 2**20:.0f} MiB; {_RAISE_MAX_GB}")
        # a zip says how many compressed bytes each member has: (unpacked : packed) per member
        if e.packed is not None and not e.is_dir and e.size > limits.ratio_exempt_bytes:
            ratio = e.size / max(e.packed, 1)
            if ratio > limits.max_ratio:
                raise FetchError(f"{archive.name}: refused: entry {e.name!r} unpacks to {_size(e.size)} from "
                                 f"{_size(e.packed)} ({ratio:,.0f}:1), over the compression-ratio limit of "
                                 f"{limits.max_ratio:,.0f}:1 (a zip bomb); {_NOT_OFFICIAL}; nothing was extracted")
    # every format: the whole archive, against the bytes actually downloaded (no header can lie about those)
    if declared > limits.ratio_exempt_bytes and declared > limits.max_ratio * max(packed_total, 1):
        raise FetchError(f"{archive.name}: refused: it would unpack to {_size(declared)} from {_size(packed_total)} "
                         f"({declared / max(packed_total, 1):,.0f}:1), over the compression-ratio limit of "
                         f"{limits.max_ratio:,.0f}:1 (a zip bomb); {_NOT_OFFICIAL}; nothing was extracted")


def _check_tar_end(tf: tarfile.TarFile, archive: Path) -> None:
    """After the last entry a tar holds zero blocks (or nothing). Anything else means a header understated
    its entry's size: tarfile took the rest of that entry's data for a broken header and stopped listing."""
    tf.fileobj.seek(tf.offset)
    if tf.fileobj.read(tarfile.BLOCKSIZE).strip(b"\0"):
        last = tf.members[-1].name if tf.members else "the start"
        raise FetchError(f"{archive.name}: refused: after entry {last!r} comes data that is not a tar header (a header "
                         f"that understates its entry's size, or a damaged file); {_NOT_OFFICIAL}")


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike, limits: Limits = Limits()) -> int:
    """Unpack a ``.zip`` or ``.tar(.gz|.bz2|.xz)`` into the (new or empty) folder ``target``; returns the file count.

    Every entry is checked first, on what the headers declare (see the module docstring and :class:`Limits`);
    then the bytes are counted again as they stream out, and an entry that yields more than its header
    declared is stopped before the excess reaches the disk. Everything goes into a temporary folder beside
    ``target`` that is renamed to ``target`` only when complete: any problem raises :class:`FetchError`,
    removes the temporary folder and leaves ``target`` as it was. ``__MACOSX/`` resource-fork entries are skipped.
    """
    archive, target = Path(archive), Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FetchError(f"{target}: not empty; unpack into a new folder")
    is_zip = zipfile.is_zipfile(archive)
    try:
        opened = zipfile.ZipFile(archive) if is_zip else tarfile.open(archive, "r:*")
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as err:
        raise FetchError(f"{archive.name}: not a readable zip or tar archive ({err}); download it again") from err
    packed_total = archive.stat().st_size
    target.parent.mkdir(parents=True, exist_ok=True)
    work = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.unpacking")
    work.mkdir()
    root = work.resolve()
    try:
        with opened:
            entries = [e for e in (_zip_entries(opened, archive) if is_zip else _tar_entries(opened, archive))
                       if e.parts and e.parts[0] != "__MACOSX"]
            files = [e for e in entries if not e.is_dir]
            _check_declared(archive, entries, packed_total, root, limits)
            total = 0
            for e in entries:
                path = root.joinpath(*e.parts)
                if e.is_dir:
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                src = opened.open(e.source) if is_zip else opened.extractfile(e.source)
                written = 0
                with src, open(path, "xb") as dst:  # "x": never overwrite (a duplicate entry is refused)
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        total += len(chunk)
                        # checked before the chunk is written: the disk never holds more than the header declared
                        if written > e.size:
                            raise FetchError(f"{archive.name}: refused: entry {e.name!r} holds more than the "
                                             f"{e.size:,} bytes its header declares (stopped at {written:,}): a "
                                             f"forged header (a zip bomb?); {_NOT_OFFICIAL}")
                        if written > limits.file_cap or total > limits.total_bytes:
                            raise FetchError(f"{archive.name}: refused: unpacking entry {e.name!r} passed the limit "
                                             f"of {_size(limits.file_cap)} per file, {_size(limits.total_bytes)} "
                                             f"in all; {_RAISE_MAX_GB}")
                        dst.write(chunk)
                if written < e.size:
                    raise FetchError(f"{archive.name}: entry {e.name!r} ends after {written:,} of the {e.size:,} bytes "
                                     "its header declares; the archive is damaged: download it again")
            if not is_zip:
                _check_tar_end(opened, archive)
        os.replace(work, target)  # an empty existing target is replaced in the same step
    except FetchError:
        shutil.rmtree(work, ignore_errors=True)
        raise
    except FileExistsError as err:
        shutil.rmtree(work, ignore_errors=True)
        raise FetchError(f"{archive.name}: refused: it holds the same entry twice ({err.filename})") from err
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, RuntimeError) as err:
        shutil.rmtree(work, ignore_errors=True)
        raise FetchError(f"{archive.name}: corrupt archive ({err}): a damaged download or not the official file; "
                         "download it again from the authors' server") from err
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return len(files)


# --------------------------------------------------------------------------------------------
# Data sets and models
# --------------------------------------------------------------------------------------------
def _expected_layout(kind: str, name: str) -> tuple[str, ...]:
    """The folders an official set unpacks to; each must hold at least one image."""
    if kind == "pix2pix" or name == "mini_pix2pix":
        return ("train",)
    if name == "mini_colorization":
        return ()
    return ("trainA", "trainB", "testA", "testB")


def _layout_problem(top: Path, kind: str, name: str, n_files: int) -> str | None:
    """What is wrong with an unpacked set's folders (``None``: the layout of the official set)."""
    from .images import list_images

    required = _expected_layout(kind, name)
    missing = [d for d in required if not (top / d).is_dir()]
    if missing or n_files == 0:
        found = ", ".join(sorted(p.name for p in top.iterdir())) or "nothing"
        return f"it lacks {', '.join(missing) or 'any file'} (found: {found})"
    empty = [f"{d}/" for d in required if not list_images(top / d)]
    if empty:
        return f"{', '.join(empty)} {'holds' if len(empty) == 1 else 'hold'} no images (.png, .jpg, ...)"
    return None


def fetch_dataset(kind: str, name: str, dest: str | os.PathLike | None = None, base_url: str | None = None,
                  sha256: str | None = None, force: bool = False, limits: Limits = Limits(),
                  progress: bool = True, log=print) -> Path:
    """Download, verify and unpack an official data set; returns its folder (see :func:`dataset_path`).

    An already complete copy (it has the ``.fetch.json`` record) is reused unless ``force``.
    ``base_url`` replaces the authors' server (``--mirror``): the file is ``{base_url}/datasets/{name}.zip``
    (``.tar.gz`` for pix2pix).
    """
    url = _check_name(kind, name, pretrained=False)
    if base_url:
        url = f"{base_url.rstrip('/')}/datasets/{url.rsplit('/', 1)[1]}"
    final = dataset_path(kind, name, dest)
    if (final / ".fetch.json").exists() and not force:
        log(f"{final}: already there (use --force to fetch it again)")
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=final.parent))
    try:
        archive = work / url.rsplit("/", 1)[1]
        record = download(url, archive, sha256, limits, progress)
        unpacked = work / "unpacked"
        n_files = safe_extract(archive, unpacked, limits)
        archive.unlink()
        subdirs = [p for p in unpacked.iterdir() if p.is_dir()]
        top = subdirs[0] if len(subdirs) == 1 and not any(p.is_file() for p in unpacked.iterdir()) else unpacked
        problem = _layout_problem(top, kind, name, n_files)
        if problem:
            raise FetchError(f"{url}: unpacked, but {problem}; not the official data set, so it was not kept")
        record.update({"kind": kind, "name": name, "files": n_files,
                       "fetched": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
        (top / ".fetch.json").write_text(json.dumps(record, indent=2))
        if final.exists():
            shutil.rmtree(final)
        os.replace(top, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"{final}: {n_files:,} files, sha256 {record['sha256']} (pin it with --sha256 next time)")
    return final


def _check_model(path: Path, check=None) -> str:
    """Open a downloaded model without running code; ``check(state_dict, name)`` (the lesson importer's
    ``describe``) says what it is or raises ``ValueError``. Without ``check``: a non-empty state dict of tensors."""
    from ..checkpoints import load_torch_untrusted

    state = load_torch_untrusted(path)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(hasattr(v, "shape") for v in state.values()):
        raise FetchError(f"{path.name}: not a state dict of tensors")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    return check(state, path.name) if check is not None else f"{len(state)} tensors"


def fetch_pretrained(kind: str, name: str, dest: str | os.PathLike | None = None, base_url: str | None = None,
                     sha256: str | None = None, force: bool = False, limits: Limits = Limits(),
                     progress: bool = True, log=print, check=None) -> Path:
    """Download an official pretrained generator (``.pth``) and check it loads as one; returns its path.

    ``check(state_dict, name) -> description`` is the lesson importer's check (``Importer.describe``, which
    ``deepfake-lab fetch --pretrained`` passes); a file it refuses is not kept.
    """
    url = _check_name(kind, name, pretrained=True)
    if base_url:
        url = f"{base_url.rstrip('/')}/{url.split('/')[-2]}/{name}.pth"
    final = model_path(kind, name, dest)
    if final.exists() and not force:
        log(f"{final}: already there (use --force to fetch it again)")
        return final
    tmp = final.with_name(f".{final.name}.download")
    try:
        record = download(url, tmp, sha256, limits, progress)
        try:
            what = _check_model(tmp, check)
        except (ValueError, OSError) as err:
            raise FetchError(f"{url}: downloaded, but it is not a usable {kind} generator ({err}); not kept") from err
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    log(f"{final}: {what}, {record['bytes']:,} bytes, sha256 {record['sha256']}")
    return final


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
