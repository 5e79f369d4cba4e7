"""Responsible use: every image this package generates says so, to people and to machines.

* a visible label ("SYNTHETIC - made with deepfake_lab") drawn on a strip below the image, so it
  survives screenshots and does not hide any pixel of the result;
* machine-readable provenance in PNG text chunks (``synthetic=true``, the generator, the model,
  the time, and an IPTC digital-source-type URI that content-credential readers understand);
* an invisible watermark in the pixels (:mod:`deepfake_lab.watermark`): "synthetic, made by deepfake_lab"
  in the DCT blocks of the luma, which outlives what strips metadata (a screenshot, a JPEG re-save, a crop
  of the strip); ``deepfake-lab verify FILE`` reads all three;
* C2PA content credentials (https://c2pa.org), with the ``c2pa-python`` package: a signed manifest
  inside the PNG (and MP4/GIF) whose ``c2pa.actions`` assertion says the file was created by a trained
  model (IPTC ``trainedAlgorithmicMedia``). Any C2PA reader shows it (``c2patool``,
  contentcredentials.org/verify). The signing certificate is a local one, made on first use and kept in
  the package's cache folder: readers report it as *untrusted* (no public authority vouches for it), but
  the signature proves the file has not changed since it was signed, and the statement travels with it.

Labelling can be switched off only in code (``label=False``), for example to compute metrics on raw
outputs; the command line and the app always label.
"""
from __future__ import annotations

import datetime as _dt
import functools
import io
import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

__all__ = ["LABEL_TEXT", "REFERENCE_TEXT", "label_image", "mark_synthetic", "provenance_info", "save_labelled_png",
           "save_reference_png", "read_provenance", "sign_content_credentials", "read_content_credentials", "credential_actions",
           "content_credentials_available", "content_credentials_state", "find_label_strip"]

log = logging.getLogger(__name__)

LABEL_TEXT = "SYNTHETIC - made with deepfake_lab"
#: IPTC NewsCodes "digital source type" for media created by a trained model
IPTC_TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


#: the colour of the SYNTHETIC strip, and of the strip under real images shown beside generated ones
LABEL_COLOUR = (200, 20, 20)
REFERENCE_COLOUR = (70, 70, 70)
#: what the grey strip says: an input or a ground truth is shown next to generated images, not generated itself
REFERENCE_TEXT = "REAL - not generated"


def label_image(image: Image.Image, text: str = LABEL_TEXT, colour: tuple[int, int, int] = LABEL_COLOUR,
                short_text: str = "SYNTHETIC", fit_text: str | None = None) -> Image.Image:
    """Return a copy of ``image`` with a strip below it that carries ``text`` in white on ``colour``.

    The font is sized so that ``fit_text`` (default: ``text``) fits the width; images too narrow for it get a
    bitmap font and ``short_text``. Giving two labels the same ``fit_text`` gives them strips of one height,
    so a labelled input and a labelled output line up (e.g. in a before/after slider).
    """
    image = image.convert("RGB")
    fit_text = fit_text or text
    w, h = image.size
    size = min(32, w // 24)
    font = _font(max(size, 12))
    draw_probe = ImageDraw.Draw(image)
    # shrink the text until it fits the width
    while size > 11:
        box = draw_probe.textbbox((0, 0), fit_text, font=font)
        if box[2] - box[0] <= w - 4:
            break
        size -= 1
        font = _font(size)
    box = draw_probe.textbbox((0, 0), fit_text, font=font)
    if size < 12 or box[2] - box[0] > w - 4:
        # small images: Pillow's bitmap font (crisp, ~6 px a letter) and the short form of the label
        font = ImageFont.load_default_imagefont() if hasattr(ImageFont, "load_default_imagefont") else _font(11)
        if draw_probe.textbbox((0, 0), fit_text, font=font)[2] > w - 4:
            text, fit_text = short_text, "SYNTHETIC"  # every short label gets the strip height of this one
        box = draw_probe.textbbox((0, 0), fit_text, font=font)
        size = box[3] - box[1]
    strip = size + 6
    text_box = draw_probe.textbbox((0, 0), text, font=font)
    out = Image.new("RGB", (w, h + strip), colour)
    out.paste(image, (0, 0))
    draw = ImageDraw.Draw(out)
    draw.text(((w - (text_box[2] - text_box[0])) // 2, h + (strip - (box[3] - box[1])) // 2 - box[1]), text,
              fill=(255, 255, 255), font=font)
    return out


def mark_synthetic(image: Image.Image, media: int = 1) -> Image.Image:
    """The two marks in the pixels of a generated image: the invisible watermark of
    :mod:`deepfake_lab.watermark` (which outlives re-saving, JPEG 75 and crops; the README's table says what
    removes it) in the image itself, then the visible SYNTHETIC strip below it (``media``: 1 a still image, 2 a
    video frame)."""
    from .watermark import embed_image

    return label_image(embed_image(image, media))


def find_label_strip(rgb, colour: tuple[int, int, int] = LABEL_COLOUR, tolerance: int = 90) -> tuple[str, int] | None:
    """Where the strip of :func:`label_image` is in an (H, W, 3) uint8 picture: ``("bottom", rows)`` or
    ``("top", rows)``, or None. A row belongs to the strip when most of its pixels are within ``tolerance``
    (sum of the three channel differences) of ``colour`` (JPEG and H.264 shift it a little); the strip must
    be at least 6 rows high and hold some white text."""
    import numpy as np

    pixels = np.asarray(rgb)[..., :3].astype(np.int16)
    near = np.abs(pixels - np.array(colour)).sum(axis=-1) < tolerance  # (H, W)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    # white text, pink where it blends with the red, dark red where JPEG rings around it
    letters = ((r > 150) & (np.abs(g - b) < 40) & (r - g > -20)) | (r - np.maximum(g, b) > 40)
    strip_rows = (near.mean(axis=1) > 0.3) & ((near | letters).mean(axis=1) > 0.85)
    for where, order in (("bottom", strip_rows[::-1]), ("top", strip_rows)):
        skip = 1 if len(order) > 1 and not order[0] and order[1] else 0  # one blended edge row after a resize
        rows = int(np.argmin(np.append(order[skip:], False)))
        if rows >= 6:
            band = pixels[-rows - skip:len(pixels) - skip] if where == "bottom" else pixels[skip:skip + rows]
            if (band.min(axis=-1) > 150).mean() > 0.002:  # white letters
                return where, rows
    return None


def save_reference_png(image: Image.Image, path: str | os.PathLike, details: dict[str, Any] | None = None) -> Path:
    """Save a *real* image shown next to generated ones (an input, a ground truth): a grey "REAL - not
    generated" strip of the same height as the SYNTHETIC one, and text chunks with ``synthetic=false``."""
    from . import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labelled = label_image(image, REFERENCE_TEXT, REFERENCE_COLOUR, short_text="REAL", fit_text=LABEL_TEXT)
    info = {"synthetic": "false", "Software": f"deepfake_lab {__version__}",
            "Description": "A real image (an input or a ground truth) shown beside generated ones; not generated."}
    if details:
        info["deepfake_lab"] = json.dumps(details, sort_keys=True, default=str)
    path.write_bytes(_png_bytes(labelled, info))
    return path


def _png_bytes(image: Image.Image, text: dict[str, str]) -> bytes:
    """``image`` encoded as PNG with ``text`` as iTXt chunks."""
    meta = PngImagePlugin.PngInfo()
    for key, value in text.items():
        meta.add_itxt(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=meta)
    return buffer.getvalue()


def provenance_info(details: dict[str, Any] | None = None) -> dict[str, str]:
    """The text chunks written into every generated PNG."""
    from . import __version__

    info = {
        "synthetic": "true",
        "Software": f"deepfake_lab {__version__}",
        "DigitalSourceType": IPTC_TRAINED_ALGORITHMIC_MEDIA,
        "Created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "Description": "Synthetic image generated by a model for teaching; not a photograph of a real event.",
    }
    if details:
        info["deepfake_lab"] = json.dumps(details, sort_keys=True, default=str)
    return info


def save_labelled_png(image: Image.Image, path: str | os.PathLike, details: dict[str, Any] | None = None,
                      label: bool = True) -> Path:
    """Save ``image`` as PNG with the invisible mark and the visible label (unless ``label=False``), the
    provenance text chunks and, where the C2PA library is installed, signed content credentials."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if label:
        image = mark_synthetic(image)
    buffer = io.BytesIO(_png_bytes(image, provenance_info(details)))
    if not sign_content_credentials(buffer, path, "image/png", details):
        path.write_bytes(buffer.getvalue())  # no C2PA library: the label and the text chunks still say it
    return path


# ---------------------------------------------------------------------------------------------------------------
# C2PA content credentials
# ---------------------------------------------------------------------------------------------------------------
_SIGN_LOCK = threading.Lock()


def content_credentials_available() -> bool:
    """Whether C2PA manifests can be written here (the ``c2pa-python`` package imports)."""
    try:
        import c2pa  # noqa: F401
    except ImportError:
        return False
    return True


def _identity_file() -> Path:
    from .data.embedded import cache_dir

    return cache_dir() / "c2pa" / "local-signer.json"


def _make_identity() -> dict[str, str]:
    """A local certificate authority and an ES256 signing certificate issued by it (C2PA does not accept a
    self-signed end certificate): PEM texts of the signer's key and of the chain (signer first, then CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "deepfake_lab (local, not a public authority)")])

    def usage(sign: bool, certs: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=certs, crl_sign=certs,
                             encipher_only=False, decipher_only=False)

    now = _dt.datetime.now(_dt.timezone.utc)
    start, end = now - _dt.timedelta(days=1), now + _dt.timedelta(days=3650)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = name("deepfake_lab local certificate authority")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(usage(sign=False, certs=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    signer = (x509.CertificateBuilder().subject_name(name("deepfake_lab generated media")).issuer_name(ca_name)
              .public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(start).not_valid_after(end)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(usage(sign=True, certs=False), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return {"key": key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
            "chain": (signer.public_bytes(pem) + ca.public_bytes(pem)).decode()}


@functools.lru_cache(maxsize=1)
def _signer():
    """The C2PA signer of this machine, its key and certificates made on first use (one file, written
    atomically and readable by its owner only, so that concurrent first uses agree on one identity)."""
    import c2pa

    path = _identity_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".local-signer.", dir=path.parent)  # 0600: the private key is in it
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(_make_identity()))
        os.replace(tmp, path)
    identity = json.loads(path.read_text())
    info = c2pa.C2paSignerInfo(alg=b"es256", sign_cert=identity["chain"].encode(),
                               private_key=identity["key"].encode(), ta_url=None)
    return c2pa.Signer.from_info(info)


def _manifest(title: str, details: dict[str, Any] | None) -> str:
    from . import __version__

    action: dict[str, Any] = {"action": "c2pa.created", "digitalSourceType": IPTC_TRAINED_ALGORITHMIC_MEDIA,
                              "softwareAgent": {"name": "deepfake_lab", "version": __version__}}
    if details:
        action["parameters"] = {"description": json.dumps(details, sort_keys=True, default=str)[:2000]}
    return json.dumps({"title": title, "claim_generator_info": [{"name": "deepfake_lab", "version": __version__}],
                       "assertions": [{"label": "c2pa.actions", "data": {"actions": [action]}}]})


def sign_content_credentials(source: io.BytesIO | str | os.PathLike, dest: str | os.PathLike, mime: str,
                             details: dict[str, Any] | None = None) -> bool:
    """Write ``source`` (bytes in memory or a file) to ``dest`` with a signed C2PA manifest that says it was
    created by a trained model. Returns False, writing nothing, when the C2PA library is not installed or
    signing fails (logged): the caller then writes the file without it. ``dest`` may be ``source``'s path."""
    if not content_credentials_available():
        return False
    import c2pa

    dest = Path(dest)
    data = source.getvalue() if isinstance(source, io.BytesIO) else Path(source).read_bytes()
    out = io.BytesIO()
    try:
        with _SIGN_LOCK:  # one signer for the process; C2PA's native code is not documented as thread-safe
            builder = c2pa.Builder(_manifest(dest.name, details))
            builder.sign(_signer(), mime, io.BytesIO(data), out)
    except Exception as err:  # noqa: BLE001 - never lose the output over its credentials
        log.warning("%s: C2PA content credentials not added (%s: %s); the visible label and the metadata are "
                    "there. If the local signing identity %s is damaged, delete it: a new one is made on next use",
                    dest, type(err).__name__, err, _identity_file())
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(out.getvalue())
    os.chmod(tmp, 0o644)
    os.replace(tmp, dest)  # readers see the old file or the signed one, never half of it
    return True


def read_content_credentials(path: str | os.PathLike) -> dict[str, Any] | None:
    """The C2PA manifest store of a file as a dict (``active_manifest``, ``manifests``, ``validation_status``
    ...), or None when it has none or no C2PA library is installed."""
    if not content_credentials_available():
        return None
    import c2pa

    try:
        with c2pa.Reader(str(path)) as reader:
            return json.loads(reader.json())
    except c2pa.C2paError:
        return None


def credential_actions(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The actions of the active C2PA manifest of a file (``[]`` when it has none): for this package's
    outputs, one ``c2pa.created`` action with ``digitalSourceType`` trainedAlgorithmicMedia."""
    store = read_content_credentials(path)
    if not store:
        return []
    manifest = store["manifests"][store["active_manifest"]]
    return [action for assertion in manifest.get("assertions", []) if assertion["label"].startswith("c2pa.actions")
            for action in assertion["data"].get("actions", [])]


def content_credentials_state(path: str | os.PathLike) -> tuple[str, list[str]]:
    """``("valid" | "changed" | "absent", notes)`` for the C2PA manifest of a file. *valid*: the signature
    checks out and covers the file as it is (this package's local signer is reported untrusted, a note, not
    a failure); *changed*: a manifest is there but the file or the manifest changed after signing."""
    store = read_content_credentials(path)
    if not store or not store.get("active_manifest"):
        return "absent", []
    problems = {item["code"] for item in store.get("validation_status", [])}
    notes = [f"created by {action.get('softwareAgent', {}).get('name', 'unknown software')}: "
             f"{action['digitalSourceType'].rsplit('/', 1)[-1]}" for action in credential_actions(path)
             if action.get("digitalSourceType")]
    if "signingCredential.untrusted" in problems:
        notes.append("signed by a local certificate no public authority vouches for")
    failed = sorted(problems - {"signingCredential.untrusted"})
    if failed:
        return "changed", notes + [f"validation: {', '.join(failed)}"]
    return "valid", notes


def read_provenance(path_or_image) -> dict[str, str]:
    """The provenance text chunks of a PNG (empty dict if it has none)."""
    image = path_or_image if isinstance(path_or_image, Image.Image) else Image.open(path_or_image)
    text = getattr(image, "text", None) or {}
    return dict(text)
