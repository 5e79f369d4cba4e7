r"""Lesson 5, the last step: putting a swapped face back into the photo it came from.

The networks of :mod:`deepfake_lab.faceswap` only ever see a 64x64 face. To swap a face in a whole
frame, :func:`swap_frame`

1. finds and aligns the face (:func:`deepfake_lab.data.faces.align_face`) and cuts out the 64x64 face
   (:func:`deepfake_lab.data.faces.extract_face`);
2. encodes it and decodes it with the other identity's decoder (:func:`deepfake_lab.faceswap.swap_faces`);
3. moves the new face's colours to the old face's (:func:`colour_match`, Reinhard et al. 2001);
4. warps it back through the alignment and blends it in under a feathered elliptical mask
   (:func:`face_mask`): :math:`y = m \hat f + (1 - m) x`.

:class:`BlendConfig` holds the mask's shape and the colour space; :class:`SwapResult` every stage, for
showing the pipeline step by step. The images this module makes are synthetic: label them
(:mod:`deepfake_lab.provenance`) before they leave the program.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from torch import nn

from .data.animation_data import frames_to_tensor
from .data.faces import FaceAlignment, align_face, extract_face, face_matrix
from .faceswap import FaceSwapConfig, swap_faces

__all__ = ["BlendConfig", "face_mask", "colour_match", "SwapResult", "swap_frame"]


@dataclass
class BlendConfig:
    """How the swapped face goes back into the frame.

    The mask is an ellipse over the inner face (centre and semi-axes as fractions of the face crop),
    its edge feathered with a Gaussian blur of ``feather`` (fraction of the crop) so no seam shows.
    Colour matching moves the swapped face's per-channel mean and standard deviation, measured under
    the mask, to those of the frame's face (Reinhard et al. 2001, in CIE Lab, or in RGB).
    """

    center: tuple[float, float] = (0.5, 0.54)
    axes: tuple[float, float] = (0.36, 0.44)
    feather: float = 0.06
    colour: str = "lab"

    def __post_init__(self):
        if self.colour not in ("lab", "rgb", "none"):
            raise ValueError(f"colour matching {self.colour!r}: use lab, rgb or none")


def face_mask(size: int = 64, blend: BlendConfig | None = None) -> np.ndarray:
    """A feathered elliptical mask over the inner face: (size, size) float32, 1 inside, 0 outside."""
    import cv2

    blend = blend or BlendConfig()
    mask = np.zeros((size, size), np.float32)
    centre = (int(round(blend.center[0] * size)), int(round(blend.center[1] * size)))
    axes = (int(round(blend.axes[0] * size)), int(round(blend.axes[1] * size)))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, -1)
    sigma = max(blend.feather * size, 0.5)
    # shrink first, so the blur fades out inside the ellipse rather than spilling past it
    k = max(1, int(round(sigma)))
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    mask[mask < 1e-3] = 0.0  # the Gaussian's far tail: exactly 0 outside, so the frame there stays untouched
    return np.clip(mask, 0.0, 1.0)


def colour_match(face: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None,
                 space: str = "lab") -> np.ndarray:
    r"""Reinhard colour transfer: per channel :math:`y = (x - \mu_x)\,\sigma_r / \sigma_x + \mu_r`.

    ``face`` and ``reference`` are (H, W, 3) uint8 RGB of one size; means and deviations are weighted
    by ``mask`` (H, W) in [0, 1] (all pixels if None). ``space``: ``"lab"`` (CIE L*a*b*, which
    separates lightness from colour, as Reinhard et al. 2001 use a similar opponent space), ``"rgb"``,
    or ``"none"``. Returns (H, W, 3) uint8.
    """
    import cv2

    if space == "none":
        return face.copy()
    if space not in ("lab", "rgb"):
        raise ValueError(f"colour space {space!r}: use lab, rgb or none")
    if face.shape != reference.shape:
        raise ValueError(f"colour_match: face {face.shape} and reference {reference.shape} differ in size")
    w = np.ones(face.shape[:2], np.float32) if mask is None else mask.astype(np.float32)
    w = w[..., None] / max(float(w.sum()), 1e-6)

    def convert(x):
        x = x.astype(np.float32) / 255.0
        return cv2.cvtColor(x, cv2.COLOR_RGB2LAB) if space == "lab" else x

    src, ref = convert(face), convert(reference)
    mu_s, mu_r = (src * w).sum((0, 1)), (ref * w).sum((0, 1))
    sd_s = np.sqrt(((src - mu_s) ** 2 * w).sum((0, 1))) + 1e-6
    sd_r = np.sqrt(((ref - mu_r) ** 2 * w).sum((0, 1)))
    out = (src - mu_s) * (sd_r / sd_s) + mu_r
    if space == "lab":
        out = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(out * 255.0, 0, 255).round().astype(np.uint8)


@dataclass
class SwapResult:
    """Every stage of one swap, as (H, W, 3) uint8 arrays (the face crops are 64x64)."""

    frame: np.ndarray
    face: np.ndarray
    swapped: np.ndarray
    matched: np.ndarray
    mask: np.ndarray
    result: np.ndarray
    alignment: FaceAlignment
    details: dict = field(default_factory=dict)


def swap_frame(frame: np.ndarray, nets: dict[str, nn.Module], config: FaceSwapConfig, to: str = "B",
               blend: BlendConfig | None = None, method: str = "auto", what: str = "source image") -> SwapResult:
    r"""Swap the largest face of ``frame`` (H, W, 3) uint8 RGB for identity ``to`` and blend it back.

    1. detect and align the face (:func:`~deepfake_lab.data.faces.align_face`), cut out the 64x64 face
       (:func:`~deepfake_lab.data.faces.extract_face`);
    2. encode it and decode with ``to``'s decoder (:func:`~deepfake_lab.faceswap.swap_faces`);
    3. colour-match the new face to the old one under the mask (:func:`colour_match`);
    4. warp the new face and the feathered mask back into the frame and alpha-blend:
       :math:`y = m \hat f + (1 - m) x`.
    """
    import cv2

    blend = blend or BlendConfig()
    frame = np.ascontiguousarray(np.asarray(frame)[..., :3])
    alignment = align_face(frame, method, 2.0, config.context_size, what=what)
    size = config.image_size
    face = extract_face(frame, alignment, size, config.coverage)
    swapped = swap_faces(nets, frames_to_tensor(face[None]), to)[0]
    swapped = ((swapped.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    mask = face_mask(size, blend)
    matched = colour_match(swapped, face, mask, blend.colour)
    h, w = frame.shape[:2]
    m = face_matrix(alignment, size, config.coverage)
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    back = cv2.warpAffine(matched, m, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    alpha = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=0)
    alpha = np.clip(alpha, 0, 1)[..., None]
    result = (alpha * back + (1 - alpha) * frame.astype(np.float32)).round().clip(0, 255).astype(np.uint8)
    details = {"method": "faceswap autoencoder (shared encoder, two decoders)", "to": to,
               "colour": blend.colour, "face_box": list(alignment.box), "roll": round(alignment.roll, 2),
               "detector": alignment.method}
    return SwapResult(frame, face, swapped, matched, (mask * 255).round().astype(np.uint8), result, alignment, details)
