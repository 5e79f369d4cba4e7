"""An invisible mark in the pixels: "synthetic, made by deepfake_lab", that outlives the metadata.

The visible SYNTHETIC strip can be cropped off; the PNG text chunks and the C2PA manifest are gone after a
screenshot or a re-save as JPEG. This mark lives in the pixels themselves, so a copy of a copy still says
where it came from (:func:`embed`, :func:`detect`). It is the block-DCT method of the watermarking
literature (Koch and Zhao 1995; Cox et al. 1997 for the spreading; the DWT-DCT variants used by image
generators work the same way), written out here:

1. **Payload.** 48 bits: a fixed 32-bit code that means "synthetic by deepfake_lab" (:data:`SYNC_CODE`),
   8 information bits (format version, still image or video frame) and a CRC-8 of them. A random image
   decodes as "no mark", because its blocks agree with the fixed code no better than chance.
2. **Where.** The luma Y = 0.299 R + 0.587 G + 0.114 B, cut into 8x8 blocks (the grid of JPEG). Block
   (i, j) carries bit ``(i mod 6) * 8 + (j mod 8)``: the payload is a 6x8 tile of blocks repeated over
   the whole image, so a 256x256 image holds every bit about 21 times.
3. **How.** A block carries its bit in the sign of d = C(1, 2) - C(2, 1), the difference of two
   mid-frequency coefficients of its orthonormal 2-D DCT (low enough to survive JPEG and a 0.5x resize,
   high enough to hide in texture). Embedding moves the two coefficients apart until ``sign * d >=``
   :data:`STRENGTH` (blocks that already agree are left alone), then adds the change to R, G and B alike, so
   only the luma moves (by a few levels of 255).
4. **Reading.** d of every 8x8 window comes from one correlation of Y with the pattern B(1,2) - B(2,1),
   clipped to +-:data:`CLIP` (one strongly textured block is one vote). The reader does not know where a
   crop began, so it tries the 64 block offsets and the 48 positions of the tile, on Y as it is, enlarged
   twice (a copy shrunk to half) and halved (a copy enlarged twice); other resizes, rotations and mirror
   images are not searched and lose the mark. For each guess it adds up the blocks of each bit (a soft
   majority vote) and scores the fixed code, ``z = sum(s_k d_k) / sqrt(sum(d_k^2))`` over the code's
   blocks: about N(0, 1) on an unmarked image (divided by the spread of z over all guesses where that is
   wider, as on smooth images), growing with the number of marked blocks. :data:`Z_THRESHOLD` decides;
   the best guess gives the bits.

What it cannot do: a mark says "this tool made it", never "this is real" nor "this is fake". Anyone with
this file can remove it (a slight rotation, an odd resize, regenerating the image) or forge it onto a real
photograph, and the absence of a mark proves nothing. See the "Responsible use" section of the README for the measured
survival table (``benchmarks/bench_watermark.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

__all__ = ["SYNC_CODE", "STRENGTH", "VIDEO_STRENGTH", "Z_THRESHOLD", "MIN_SIDE", "MEDIA", "Mark", "payload_bits",
           "embed", "embed_image", "detect", "detect_frames", "detect_sequence"]

#: the fixed 32 bits that mean "synthetic, made by deepfake_lab" (16 ones, 16 zeros)
SYNC_CODE = 0xD5A3_6C1B
#: information bits: format version (high 4 bits) and what was marked (low 4 bits)
VERSION = 1
MEDIA = {1: "image", 2: "video frame"}
TILE = (6, 8)  # blocks of the payload tile: 6 rows x 8 columns = 48 bits
BLOCK = 8
#: the margin embedding enforces on d = C(1,2) - C(2,1), in DCT units of 0..255 luma (about 2.7 levels of
#: 255 in a flat block; PSNR 40.6-44.9 dB on seven scikit-image photos at 256x256)
STRENGTH = 12.0
#: video frames get more: H.264 smooths flat areas harder than JPEG (measured: at 12, a CRF 23 re-encode of
#: the animation demo scores z = 6.4; at 20, 9.3)
VIDEO_STRENGTH = 20.0
#: at most this many times the margin of change of d in one block (very textured blocks that disagree are
#: only pushed part way); a block of a weak bit (BIT_MARGIN) gets up to 1 + EXTRA_PASSES times as much
MAX_CHANGE = 4.0
#: reading clips d to +-CLIP: a block of strong texture counts as one vote, not as ten
CLIP = 2 * STRENGTH
#: the detection threshold on z (about N(0,1) on unmarked images; see the module docstring)
Z_THRESHOLD = 6.5
#: embedding passes (each makes up for what rounding and clipping at 0 and 255 took from the last)
PASSES = 3
#: every bit's vote, as the reader adds it up (clipped d of its blocks), must reach this fraction of
#: ``blocks x strength``; a bit short of it (many textured blocks that the budget pushed only part way)
#: gets, in each of up to EXTRA_PASSES more passes, another budget for its blocks (the other bits' blocks
#: stay as they are). Headroom for what is added after embedding: the SYNTHETIC strip below the image is
#: read too, and its lettering votes at random
#: (measured: it took 72 of a bit's 144 on a 256x300 cartoon, which then read wrong). So a block's change
#: depends on the whole image: two pictures that share a region can be marked differently there
BIT_MARGIN = 0.5
EXTRA_PASSES = 3
#: a video's mark is read on this many frames, spread over it
FRAMES_READ = 16
#: smaller images are not marked: too few blocks to carry the payload
MIN_SIDE = 64
#: decoding resizes the image by these factors (2: it was shrunk to half; 0.5: it was enlarged twice)
SCALES = (1.0, 2.0, 0.5)
#: decoding looks at most at this many pixels a side of the (enlarged) image, taken from the centre
MAX_DECODE_SIDE = 1024

_LUMA = np.array([0.299, 0.587, 0.114])


def _dct_basis(u: int, v: int) -> np.ndarray:
    """The (u, v) basis image of the orthonormal 8x8 DCT-II (row frequency u, column frequency v)."""
    n = np.arange(BLOCK)
    a = lambda k: np.sqrt((1 if k == 0 else 2) / BLOCK)  # noqa: E731
    return np.outer(a(u) * np.cos((2 * n + 1) * u * np.pi / (2 * BLOCK)),
                    a(v) * np.cos((2 * n + 1) * v * np.pi / (2 * BLOCK)))


#: d = <block, KERNEL>; <KERNEL, KERNEL> = 2, so adding c * KERNEL / 2 to a block changes d by c
KERNEL = _dct_basis(1, 2) - _dct_basis(2, 1)


def _crc8(value: int, bits: int = 8) -> int:
    """CRC-8 (polynomial x^8 + x^2 + x + 1) of the ``bits`` low bits of ``value``, high bit first."""
    crc = 0
    for i in reversed(range(bits)):
        crc ^= ((value >> i) & 1) << 7
        crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _bits(value: int, n: int) -> list[int]:
    return [(value >> i) & 1 for i in reversed(range(n))]


def payload_bits(media: int = 1) -> np.ndarray:
    """The 48 bits of the mark: code (32), info = version and media (8), CRC-8 of info (8)."""
    info = (VERSION << 4) | media
    return np.array(_bits(SYNC_CODE, 32) + _bits(info, 8) + _bits(_crc8(info), 8), dtype=np.uint8)


_SYNC_SIGNS = np.zeros(TILE)  # +-1 at the code's 32 tile cells, 0 at the 16 information cells
_SYNC_SIGNS.flat[:32] = 2.0 * np.array(_bits(SYNC_CODE, 32)) - 1


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float64) @ _LUMA


def embed(rgb: np.ndarray, media: int = 1, strength: float | None = None) -> np.ndarray:
    """``rgb`` ((H, W, 3) uint8) with the mark in its luma; images under ``MIN_SIDE`` pixels come back as they are.

    ``media``: 1 a still image, 2 a video frame (a stronger mark, :data:`VIDEO_STRENGTH`).
    """
    if media not in MEDIA:
        raise ValueError(f"media={media}: use one of {sorted(MEDIA)} ({', '.join(MEDIA.values())})")
    strength = strength if strength is not None else (VIDEO_STRENGTH if media == 2 else STRENGTH)
    rgb = np.asarray(rgb)
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        return rgb.copy()
    bh, bw = h // BLOCK, w // BLOCK
    tile = 2.0 * payload_bits(media).reshape(TILE) - 1  # (6, 8) of +-1
    signs = np.tile(tile, (-(-bh // TILE[0]), -(-bw // TILE[1])))[:bh, :bw]  # (bh, bw): the bit of every block
    out = rgb[..., :3].copy()
    budget = np.full((bh, bw), MAX_CHANGE * strength)
    rows, cols = np.indices((bh, bw))
    cells = (rows % TILE[0]) * TILE[1] + cols % TILE[1]  # (bh, bw): the tile cell (bit) of every block
    blocks_per_bit = np.bincount(cells.ravel(), minlength=TILE[0] * TILE[1])
    for n in range(PASSES + EXTRA_PASSES):  # again after rounding and clipping: near 0 or 255 a push lands in part
        y = _luma(out)[:bh * BLOCK, :bw * BLOCK].reshape(bh, BLOCK, bw, BLOCK)
        d = np.einsum("iajb,ab->ij", y, KERNEL)  # (bh, bw): the carrier of every block
        short = np.clip(strength - signs * d, 0.0, None)  # how far each block is from the margin
        if n >= PASSES:  # an extra pass: only the bits the reader could still get wrong, each one more budget
            votes = np.bincount(cells.ravel(), np.clip(signs * d, -CLIP, CLIP).ravel(), minlength=blocks_per_bit.size)
            weak = votes < BIT_MARGIN * strength * blocks_per_bit  # (48,)
            if not weak.any():
                break
            budget = np.where(weak[cells], budget + MAX_CHANGE * strength, 0.0)
        push = np.minimum(short, budget)  # only blocks short of the margin move
        if not push.any():
            continue
        budget -= push
        delta = np.zeros((h, w))
        delta[:bh * BLOCK, :bw * BLOCK] = ((signs * push)[:, None, :, None] * KERNEL[None, :, None, :] / 2).reshape(
            bh * BLOCK, bw * BLOCK)
        # the same change in R, G, B: only Y moves
        out = np.clip(np.rint(out.astype(np.float64) + delta[..., None]), 0, 255).astype(np.uint8)
    return out


def embed_image(image, media: int = 1):
    """A PIL image with the mark (RGB)."""
    from PIL import Image

    return Image.fromarray(embed(np.asarray(image.convert("RGB")), media))


@dataclass
class Mark:
    """What :func:`detect` read. ``found``: the fixed code is there (z >= ``Z_THRESHOLD``)."""

    found: bool
    z: float  # the score of the fixed code at the best guess (about N(0, 1) without a mark)
    bits: np.ndarray = field(repr=False)  # the 48 bits read at the best guess
    bit_accuracy: float  # the fraction of those bits equal to the mark's (of a still image or a video frame)
    payload_ok: bool  # the information bits pass their CRC
    version: int | None
    media: str | None
    offset: tuple[int, int]  # where the block grid starts in the (enlarged) image
    scale: float  # the enlargement that read it best

    def describe(self) -> str:
        if not self.found:
            return f"no mark (z = {self.z:.1f}; needs {Z_THRESHOLD:g})"
        what = f"{self.media}, format {self.version}" if self.payload_ok else "payload damaged (CRC fails)"
        return (f"present: synthetic by deepfake_lab ({what}); z = {self.z:.1f}, "
                f"bits {self.bit_accuracy:.0%} as written" + (f", read at {self.scale:g}x" if self.scale != 1 else ""))


def _folded(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per block offset (64) the soft sum ``F`` and the energy ``Q`` of d over each tile cell: (64, 6, 8) each."""
    h, w = y.shape
    kernel = np.zeros((h, w))
    kernel[:BLOCK, :BLOCK] = KERNEL
    # r[p, q] = d of the 8x8 window whose corner is (p, q): a correlation, done with FFTs
    r = np.fft.irfft2(np.fft.rfft2(y) * np.conj(np.fft.rfft2(kernel)), s=(h, w))[:h - BLOCK + 1, :w - BLOCK + 1]
    F, Q = np.zeros((BLOCK * BLOCK, *TILE)), np.zeros((BLOCK * BLOCK, *TILE))
    for k in range(BLOCK * BLOCK):
        oy, ox = divmod(k, BLOCK)
        d = np.clip(r[oy::BLOCK, ox::BLOCK], -CLIP, CLIP)  # strong texture outvotes no one
        rows, cols = np.indices(d.shape)
        cells = (rows % TILE[0]) * TILE[1] + cols % TILE[1]
        F[k].flat[:] = np.bincount(cells.ravel(), d.ravel(), minlength=TILE[0] * TILE[1])
        Q[k].flat[:] = np.bincount(cells.ravel(), (d * d).ravel(), minlength=TILE[0] * TILE[1])
    return F, Q


def _rescale(y: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return y
    from PIL import Image

    h, w = y.shape
    return np.asarray(Image.fromarray(y.astype(np.float32)).resize((round(w * scale), round(h * scale)),
                                                                   Image.BICUBIC), dtype=np.float64)


def _centre(y: np.ndarray, side: int) -> np.ndarray:
    h, w = y.shape
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return y[top:top + side, left:left + side]


# every cyclic shift of the tile: SHIFTS[s] maps a folded cell to the tile cell it holds
_SHIFTS = [(a, b) for a in range(TILE[0]) for b in range(TILE[1])]
_SYNC_ROLLED = np.stack([np.roll(_SYNC_SIGNS, (-a, -b), axis=(0, 1)) for a, b in _SHIFTS])  # (48, 6, 8)


def detect_frames(frames: Iterable[np.ndarray]) -> Mark:
    """Read the mark of several frames of one video (each (H, W, 3) uint8) together.

    The frames' soft sums are added; z is normalised as the *mean* of per-frame scores, so a still video of
    one real picture repeated scores no higher than that picture alone.
    """
    best: tuple[float, int, float, np.ndarray] | None = None
    stacks: dict[float, list[np.ndarray]] = {s: [np.zeros((BLOCK * BLOCK, *TILE)), np.zeros((BLOCK * BLOCK, *TILE))]
                                             for s in SCALES}
    n = 0
    for frame in frames:
        y = _luma(np.asarray(frame))
        n += 1
        for scale in SCALES:
            if min(y.shape) * scale < MIN_SIDE:
                continue
            F, Q = _folded(_centre(_rescale(_centre(y, int(MAX_DECODE_SIDE / scale)), scale), MAX_DECODE_SIDE))
            stacks[scale][0] += F
            stacks[scale][1] += Q
    if n == 0:
        raise ValueError("no frames to read a mark from")
    for scale, (F, Q) in stacks.items():
        # z[k, s]: offset k, tile shift s
        num = np.einsum("kij,sij->ks", F, _SYNC_ROLLED)
        den = np.sqrt(n * np.einsum("kij,sij->ks", Q, np.abs(_SYNC_ROLLED))) + 1e-9
        z = num / den
        # blocks of a smooth or enlarged image are not independent, which widens z beyond N(0, 1): measure the
        # spread over all the guesses (robustly, so the one right guess does not count) and divide by it
        spread = 1.4826 * np.median(np.abs(z - np.median(z)))
        z = z / max(1.0, spread)
        k, s = np.unravel_index(np.argmax(z), z.shape)
        if best is None or z[k, s] > best[0]:
            a, b = _SHIFTS[s]
            best = (float(z[k, s]), int(k), scale, np.roll(F[k], (a, b), axis=(0, 1)))
    z, k, scale, tile = best  # tile: the soft value of each payload bit, in payload order
    bits = (tile.ravel() > 0).astype(np.uint8)
    info = int("".join(map(str, bits[32:40])), 2)
    crc = int("".join(map(str, bits[40:48])), 2)
    payload_ok = _crc8(info) == crc and (info & 0xF) in MEDIA
    media = (info & 0xF) if payload_ok else (2 if n > 1 else 1)
    accuracy = float((bits == payload_bits(media)).mean())
    found = z >= Z_THRESHOLD
    return Mark(found=bool(found), z=z, bits=bits, bit_accuracy=accuracy, payload_ok=bool(found and payload_ok),
                version=(info >> 4) if found and payload_ok else None,
                media=MEDIA[info & 0xF] if found and payload_ok else None, offset=divmod(k, BLOCK), scale=scale)


def detect(image) -> Mark:
    """Read the mark of one image: a PIL image or an (H, W, 3) uint8 array."""
    rgb = np.asarray(image.convert("RGB")) if hasattr(image, "convert") else np.asarray(image)
    return detect_frames([rgb])


def detect_sequence(frames: Sequence[np.ndarray], most: int = FRAMES_READ) -> Mark:
    """The mark of a video, read on at most ``most`` frames spread evenly over it."""
    frames = list(frames)
    picks = np.unique(np.linspace(0, len(frames) - 1, min(most, len(frames))).round().astype(int))
    return detect_frames(frames[i] for i in picks)
