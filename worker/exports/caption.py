"""A clip's caption: a translucent band at the bottom of the frame with the clip's
name, its rating as stars and its notes.

The band is drawn once per clip with Pillow, converted to premultiplied YUV
planes, and blended into each frame with integer arithmetic on the band rows
only; the rest of the frame is not touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from worker.media import Plane
from worker.params import Clip

U16 = npt.NDArray[np.uint16]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

BAND_SHARE = 0.2
BAND_FILL = (8, 10, 14, 180)
ACCENT = (255, 196, 0, 255)
TEXT = (255, 255, 255, 255)
NOTES = (215, 218, 224, 255)
STAR_OFF = (120, 120, 120, 255)

# Rows: Y, U, V; columns: R, G, B (video range, scaled to 0..255 inputs).
_BT601 = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]])
_BT709 = np.array(
    [[46.559, 156.629, 15.812], [-25.664, -86.336, 112.0], [112.0, -101.730, -10.270]]
)


@dataclass(frozen=True)
class Caption:
    top: int
    """First luma row of the band (even)."""
    luma: tuple[U16, U16]
    """(caption * alpha, 256 - alpha), alpha in 0..256."""
    u: tuple[U16, U16]
    v: tuple[U16, U16]

    def apply(self, y: Plane, u: Plane, v: Plane) -> None:
        top = self.top
        _blend(y[top:], *self.luma)
        _blend(u[top // 2 :], *self.u)
        _blend(v[top // 2 :], *self.v)


def band_top(height: int) -> int:
    band = max(40, round(height * BAND_SHARE))
    return max(0, height - min(band, height // 2)) & ~1


def make_caption(clip: Clip, width: int, height: int) -> Caption:
    top = band_top(height)
    band = _draw_band(clip, width + (width & 1), height - top + ((height - top) & 1))
    rgba = np.asarray(band, dtype=np.float32)
    alpha = np.round(rgba[..., 3] * (256.0 / 255.0))
    matrix = _BT709 if height >= 720 else _BT601
    yuv = rgba[..., :3] @ matrix.T / 255.0 + np.array([16.0, 128.0, 128.0])
    luma = _premultiplied(yuv[..., 0], alpha)
    # Chroma is subsampled 2x2: average the premultiplied values over each block.
    half_alpha = _pool(alpha)
    chroma = [_pool(yuv[..., i] * alpha) for i in (1, 2)]
    u, v = ((c.round().astype(np.uint16), (256 - half_alpha).astype(np.uint16)) for c in chroma)
    return Caption(top=top, luma=luma, u=u, v=v)


def _premultiplied(
    values: npt.NDArray[np.float64], alpha: npt.NDArray[np.float32]
) -> tuple[U16, U16]:
    return (values * alpha).round().astype(np.uint16), (256 - alpha).astype(np.uint16)


def _pool(values: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    h, w = values.shape
    blocks = values.reshape(h // 2, 2, w // 2, 2)
    return np.asarray(blocks.mean(axis=(1, 3), dtype=np.float64), dtype=np.float64)


def _blend(rows: Plane, premultiplied: U16, keep: U16) -> None:
    h, w = min(rows.shape[0], keep.shape[0]), min(rows.shape[1], keep.shape[1])
    target = rows[:h, :w]
    mixed = np.multiply(target, keep[:h, :w], dtype=np.uint16)
    mixed += premultiplied[:h, :w]
    mixed >>= 8
    target[...] = mixed


def _draw_band(clip: Clip, width: int, height: int) -> Image.Image:
    band = Image.new("RGBA", (width, height), BAND_FILL)
    draw = ImageDraw.Draw(band)
    accent = max(2, height // 30)
    draw.rectangle((0, 0, width, accent - 1), fill=ACCENT)
    pad = max(4, round(height * 0.14))
    title_size = max(10, round(height * 0.3))
    notes_size = max(8, round(height * 0.2))
    stars_width = 0
    if clip.rating is not None:
        stars_width = _draw_stars(draw, clip.rating, right=width - pad, top=pad, size=title_size)
    title_font = _font(title_size, bold=True)
    room = width - 2 * pad - (stars_width + pad if stars_width else 0)
    draw.text((pad, pad), _fit(clip.name, title_font, room), font=title_font, fill=TEXT)
    if clip.notes:
        notes_font = _font(notes_size, bold=False)
        notes_top = pad + round(title_size * 1.25)
        text = _fit(" ".join(clip.notes.split()), notes_font, width - 2 * pad)
        draw.text((pad, notes_top), text, font=notes_font, fill=NOTES)
    return band


def _draw_stars(draw: ImageDraw.ImageDraw, rating: int, *, right: int, top: int, size: int) -> int:
    """Five stars ending at `right`, the first `rating` filled; the width they take."""
    radius = size / 2
    step = size * 1.1
    left = right - 5 * step
    for index in range(5):
        cx, cy = left + index * step + radius, top + radius
        points = []
        for k in range(10):
            r = radius if k % 2 == 0 else radius * 0.45
            angle = -math.pi / 2 + k * math.pi / 5
            points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
        draw.polygon(points, fill=ACCENT if index < rating else STAR_OFF)
    return math.ceil(5 * step)


def _fit(text: str, font: Font, room: int) -> str:
    """`text`, shortened with an ellipsis until it fits in `room` pixels."""
    if room <= 0:
        return ""
    if font.getlength(text) <= room:
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if font.getlength(text[:middle].rstrip() + "…") <= room:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + "…" if low else ""


@cache
def _font(size: int, *, bold: bool) -> Font:
    """DejaVu Sans when the system has it (wide glyph coverage), else Pillow's own font."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(name, size)
    except OSError:
        return ImageFont.load_default(size=size)
