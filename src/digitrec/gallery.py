"""A gallery of made-up hard cases: pictures of digits as users take them, made by code.

Users photograph digits on paper, scan forms and draw with a mouse; none of it looks
like MNIST. A case here is an ink shape (a real MNIST *test* digit's handwriting, a
mouse drawing from a stroke template, a letter, a scribble, or nothing) drawn black on
white, then sent through one named condition (a shadow, ruled paper, JPEG, ...).
Every function is pure: the same inputs and seed give the same pixels on any machine.

    >>> image, label = make_case("shadow", 7, np.random.default_rng(0))  # a mouse-drawn 7
    >>> image.shape, image.dtype, label
    ((280, 280, 3), dtype('uint8'), 7)

Images are ``float32`` RGB in [0, 1] between conditions and ``uint8`` at the end.
``bench/gallery.py`` writes a gallery to disk and measures a model on it.
"""

from __future__ import annotations

import io
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

CANVAS = 280  # a web canvas's size, and a phone crop's
PHOTO = (480, 640)  # the large photo that a small digit sits in

# ---------------------------------------------------------------- ink shapes


def mnist_shape(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An MNIST digit's handwriting as a smooth ``CANVAS``-sized ink mask in [0, 1].

    Cubic upsampling of the 28x28 grey levels, then a soft threshold at a random level:
    a low level keeps the marker-thick stroke, a high one leaves a fine pen's.
    """
    digit = np.asarray(digit, np.float32) / 255.0
    rows, cols = np.nonzero(digit > 0.2)
    if rows.size == 0:
        return np.zeros((CANVAS, CANVAS), np.float32)
    crop = np.pad(digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1], 2)
    scale = rng.uniform(0.55, 0.8) * CANVAS / (np.ptp(rows) + 1)
    scale = min(scale, 0.85 * CANVAS / max(crop.shape))
    big = ndimage.zoom(crop, scale, order=3)
    return _place(np.clip((big - rng.uniform(0.3, 0.7)) / 0.08 + 0.5, 0, 1), rng)


def _arc(cx, cy, rx, ry, start, stop, n=14):
    """Points on an ellipse from turn ``start`` to ``stop`` (0 = top, clockwise)."""
    turns = np.linspace(start, stop, n) * 2 * np.pi
    return list(zip(cx + rx * np.sin(turns), cy - ry * np.cos(turns), strict=True))


_EIGHT = np.linspace(0, 1.02, 26) * 2 * np.pi
# Strokes in the unit square (x right, y down). Strokes of 4+ points are drawn as smooth
# curves through them, shorter ones as straight lines, so corners stay sharp.
STROKES: dict[str, list[list[tuple[float, float]]]] = {
    "0": [_arc(0.5, 0.5, 0.32, 0.45, 0, 1.04, 20)],
    "1": [[(0.3, 0.22), (0.55, 0.05), (0.55, 0.95)]],
    "2": [
        [(0.2, 0.25), (0.35, 0.08), (0.62, 0.06), (0.8, 0.25), (0.7, 0.5), (0.2, 0.93)],
        [(0.2, 0.93), (0.85, 0.93)],
    ],
    "3": [
        [(0.2, 0.15), (0.5, 0.04), (0.78, 0.18), (0.72, 0.4), (0.42, 0.5)],
        [(0.42, 0.5), (0.75, 0.58), (0.82, 0.8), (0.55, 0.96), (0.18, 0.86)],
    ],
    "4": [[(0.6, 0.05), (0.15, 0.65), (0.85, 0.65)], [(0.65, 0.3), (0.65, 0.97)]],
    "5": [
        [(0.8, 0.06), (0.3, 0.06), (0.25, 0.45)],
        [(0.25, 0.45), (0.55, 0.38), (0.8, 0.55), (0.8, 0.8), (0.5, 0.96), (0.18, 0.86)],
    ],
    "6": [
        [(0.72, 0.05), (0.42, 0.25), (0.22, 0.6), (0.28, 0.88), (0.52, 0.96)]
        + [(0.76, 0.8), (0.72, 0.58), (0.48, 0.5), (0.25, 0.65)]
    ],
    "7": [[(0.15, 0.08), (0.85, 0.08), (0.42, 0.96)]],
    "8": [list(zip(0.5 + 0.28 * np.sin(2 * _EIGHT), 0.5 - 0.45 * np.cos(_EIGHT), strict=True))],
    "9": [_arc(0.5, 0.3, 0.27, 0.24, 0.25, 1.27), [(0.77, 0.3), (0.7, 0.96)]],
    # Hand-drawn letters, to be refused: unlike printed ones they share the digits' pen.
    "A": [[(0.1, 0.95), (0.5, 0.05), (0.9, 0.95)], [(0.28, 0.6), (0.72, 0.6)]],
    "E": [[(0.8, 0.05), (0.2, 0.05), (0.2, 0.95), (0.8, 0.95)], [(0.2, 0.5), (0.7, 0.5)]],
    "H": [[(0.2, 0.05), (0.2, 0.95)], [(0.8, 0.05), (0.8, 0.95)], [(0.2, 0.5), (0.8, 0.5)]],
    "K": [[(0.2, 0.05), (0.2, 0.95)], [(0.8, 0.05), (0.22, 0.55), (0.85, 0.95)]],
    "M": [[(0.1, 0.95), (0.15, 0.05), (0.5, 0.6)], [(0.5, 0.6), (0.85, 0.05), (0.9, 0.95)]],
    "W": [[(0.05, 0.05), (0.28, 0.95), (0.5, 0.35)], [(0.5, 0.35), (0.72, 0.95), (0.95, 0.05)]],
    "X": [[(0.15, 0.05), (0.85, 0.95)], [(0.85, 0.05), (0.15, 0.95)]],
    "R": [
        [(0.2, 0.95), (0.2, 0.05)],
        [(0.2, 0.05), (0.62, 0.06), (0.8, 0.25), (0.62, 0.45), (0.2, 0.47)],
        [(0.42, 0.47), (0.85, 0.95)],
    ],
}
PENS = {"thin": (2, 3), "thick": (15, 25)}  # mouse pen widths in pixels


def _smooth(points: np.ndarray, samples: int = 8) -> np.ndarray:
    """A Catmull-Rom curve through ``points``; lines of up to 3 points stay straight."""
    if len(points) < 4:
        return points
    padded = np.concatenate([points[:1], points, points[-1:]])
    t = np.linspace(0, 1, samples, endpoint=False)[:, None]
    curve = []
    for p0, p1, p2, p3 in zip(padded, padded[1:], padded[2:], padded[3:], strict=False):
        curve.append(
            0.5
            * (
                2 * p1
                + (p2 - p0) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (3 * p1 - p0 - 3 * p2 + p3) * t**3
            )
        )
    return np.concatenate([*curve, points[-1:]])


def draw_strokes(strokes, width: float, size: int = CANVAS) -> np.ndarray:
    """Pixel strokes (lists of (x, y)) drawn with a round pen, antialiased, in [0, 1]."""
    scale = 2  # draw at twice the size, then average down: antialiased edges
    image = Image.new("L", (size * scale, size * scale))
    draw = ImageDraw.Draw(image)
    radius = max(width * scale / 2, 1)
    for stroke in strokes:
        points = [tuple(p) for p in _smooth(np.asarray(stroke, float)) * scale]
        draw.line(points, fill=255, width=max(1, round(width * scale)), joint="curve")
        for x, y in (points[0], points[-1]):  # round caps
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    small = image.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, np.float32) / 255.0


def mouse_shape(symbol, rng: np.random.Generator, pen: str = "thin") -> np.ndarray:
    """A digit (or letter) drawn with the mouse: its stroke template, jittered, slanted
    and squeezed at random, drawn with a ``"thin"`` or ``"thick"`` round pen."""
    height = rng.uniform(0.55, 0.8) * CANVAS
    width = height * rng.uniform(0.55, 0.9)
    slant = rng.uniform(-0.25, 0.25)
    top = rng.uniform(0.08 * CANVAS, 0.92 * CANVAS - height)
    left = rng.uniform(0.1 * CANVAS, 0.9 * CANVAS - width)
    strokes = []
    for stroke in STROKES[str(symbol)]:
        points = np.asarray(stroke, float) + rng.normal(0, 0.02, (len(stroke), 2))
        points[:, 0] += slant * (0.5 - points[:, 1])
        strokes.append(points * [width, height] + [left, top])
    return draw_strokes(strokes, rng.uniform(*PENS[pen]))


FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif-Italic.ttf", "STIXGeneral.ttf")


def letter_shape(letter: str, rng: np.random.Generator) -> np.ndarray:
    """A printed letter from one of matplotlib's bundled fonts, as an ink mask."""
    import matplotlib  # only for the folder of its bundled fonts

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / FONTS[rng.integers(len(FONTS))]
    font = ImageFont.truetype(str(path), size=int(rng.uniform(0.55, 0.8) * CANVAS))
    image = Image.new("L", (CANVAS, CANVAS))
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), letter, font=font)
    x = (CANVAS - (right - left)) / 2 - left + rng.normal(0, 0.04 * CANVAS)
    y = (CANVAS - (bottom - top)) / 2 - top + rng.normal(0, 0.04 * CANVAS)
    draw.text((x, y), letter, fill=255, font=font)
    return np.asarray(image, np.float32) / 255.0


def scribble_shape(rng: np.random.Generator) -> np.ndarray:
    """A tangled scribble: a smooth curve through random points, with a random pen."""
    points = rng.uniform(0.2, 0.8, (int(rng.integers(8, 16)), 2)) * CANVAS
    return draw_strokes([points], rng.uniform(*PENS[rng.choice(list(PENS))]))


def noise_picture(rng: np.random.Generator) -> np.ndarray:
    """Pure noise, fine or blotchy: a picture of nothing that still has contrast."""
    noise = rng.random((CANVAS, CANVAS, 3)).astype(np.float32)
    sigma = rng.choice([0.0, 1.5, 4.0])
    if sigma:
        noise = ndimage.gaussian_filter(noise, (sigma, sigma, 0))
        noise = (noise - noise.min()) / np.ptp(noise)
    return noise


def _place(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Put a mask on the canvas near its centre, at a random offset."""
    canvas = np.zeros((CANVAS, CANVAS), np.float32)
    height, width = (min(s, CANVAS) for s in mask.shape)
    top = int(np.clip((CANVAS - height) / 2 + rng.normal(0, 0.05 * CANVAS), 0, CANVAS - height))
    left = int(np.clip((CANVAS - width) / 2 + rng.normal(0, 0.05 * CANVAS), 0, CANVAS - width))
    canvas[top : top + height, left : left + width] = mask[:height, :width]
    return canvas


# ---------------------------------------------------------------- conditions
# Each takes and returns a float RGB image; those that recolour expect black on white
# and so come first in a chain.


def _recolour(image, paper, ink, strength=1.0) -> np.ndarray:
    """Black-on-white -> ``ink`` on ``paper``; ``strength`` scales (or varies) the ink."""
    alpha = (1.0 - image.mean(axis=2, keepdims=True)) * np.asarray(strength)[..., None]
    return (1 - alpha) * np.asarray(paper, np.float32) + alpha * np.asarray(ink, np.float32)


def _field(shape, rng, sigma: float) -> np.ndarray:
    """Smooth random field with zero mean and unit spread: mottling, pressure, smudges."""
    field = ndimage.gaussian_filter(rng.normal(0, 1, shape[:2]), sigma)
    return ((field - field.mean()) / max(field.std(), 1e-6)).astype(np.float32)


PAPERS = [(1.0, 0.92, 0.55), (1.0, 0.8, 0.86), (0.76, 0.88, 1.0), (0.8, 0.95, 0.74)]
PAPERS += [(0.93, 0.85, 0.68), (1.0, 0.74, 0.45)]  # sticky notes, manila, orange card
INKS = [(0.08, 0.08, 0.1), (0.1, 0.2, 0.7), (0.75, 0.1, 0.1), (0.1, 0.5, 0.2), (0.45, 0.15, 0.6)]


def coloured(image, rng):
    """Coloured ink on coloured paper."""
    paper = np.clip(np.asarray(PAPERS[rng.integers(len(PAPERS))]) + rng.normal(0, 0.03, 3), 0, 1)
    return _recolour(image, paper, INKS[rng.integers(len(INKS))])


def red_on_green(image, rng):
    """Red ink on green paper of the same brightness: invisible in plain grey."""
    paper = np.array([0.12, 0.43, 0.16]) + rng.normal(0, 0.02, 3)
    luma = paper @ [0.299, 0.587, 0.114]
    green, blue = rng.uniform(0.03, 0.1, 2)
    red = (luma - 0.587 * green - 0.114 * blue) / 0.299  # the same luma as the paper
    return _recolour(image, paper, (red, green, blue))


def ballpoint(image, rng):
    """Blue ballpoint on white paper, its pressure (and so its depth) varying."""
    pressure = np.clip(0.8 + 0.12 * _field(image.shape, rng, 6), 0.4, 1)
    ink = np.array([0.12, 0.18, 0.55]) + rng.normal(0, 0.04, 3)
    return _recolour(image, (0.97, 0.97, 0.96), np.clip(ink, 0, 1), pressure)


def pencil(image, rng):
    """Grey pencil: low contrast and grainy."""
    grain = np.clip(rng.uniform(0.55, 1.0, image.shape[:2]), 0, 1)
    strength = rng.uniform(0.3, 0.55) * ndimage.gaussian_filter(grain, 0.7)
    return _recolour(image, (0.95, 0.95, 0.93), (0.28, 0.28, 0.32), strength)


def chalkboard(image, rng):
    """Light chalk on a dark board, patchy, with smudges of old chalk."""
    boards = [(0.12, 0.22, 0.16), (0.1, 0.1, 0.11), (0.14, 0.17, 0.22)]
    grain = np.clip(rng.uniform(0.4, 1.1, image.shape[:2]), 0, 1)
    board = _recolour(image, boards[rng.integers(len(boards))], (0.92, 0.92, 0.88), grain)
    smudge = np.clip(_field(image.shape, rng, 25), 0, None) * rng.uniform(0.02, 0.06)
    return board + smudge[..., None]


def inverted(image, rng):
    """White ink on black, as a drawing app or a dark-mode canvas exports it."""
    return 1.0 - image


def paper_texture(image, rng):
    """Paper mottling, fibres and grain."""
    height, width = image.shape[:2]
    fibres = Image.new("L", (width, height))
    draw = ImageDraw.Draw(fibres)
    for _ in range(int(rng.integers(40, 160))):
        start = rng.uniform(0, 1, 2) * [width, height]
        bends = np.cumsum(rng.normal(0, 4, (4, 2)), axis=0) + start
        draw.line([tuple(start), *map(tuple, bends)], fill=int(rng.integers(8, 30)), width=1)
    texture = (
        1
        + rng.uniform(0.015, 0.04) * _field(image.shape, rng, rng.uniform(8, 30))
        + rng.normal(0, rng.uniform(0.005, 0.02), (height, width))
        - np.asarray(fibres, np.float32) / 255.0
    )
    return image * texture[..., None]


def uneven_lighting(image, rng):
    """Light falling off across the page, a vignette, a warm or cool cast."""
    height, width = image.shape[:2]
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = x * np.cos(angle) + y * np.sin(angle)
    ramp = (ramp - ramp.min()) / np.ptp(ramp)
    light = 1 - rng.uniform(0.3, 0.6) * ramp ** rng.uniform(0.7, 2.0)
    radius = (x - x.mean()) ** 2 + (y - y.mean()) ** 2
    light *= 1 - rng.uniform(0, 0.3) * radius / radius.max()
    cast = 1 + rng.normal(0, 0.04, 3)
    return image * light[..., None] * cast


def cast_shadow(image, rng):
    """The shadow of a hand or a phone: a straight edge, from hard to soft, across the page."""
    height, width = image.shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    angle = rng.uniform(0, 2 * np.pi)
    py, px = rng.uniform(0.25, 0.75, 2) * [height, width]
    distance = (x - px) * np.cos(angle) + (y - py) * np.sin(angle)
    shade = 1 / (1 + np.exp(-distance / rng.uniform(0.5, 8)))
    return image * (1 - rng.uniform(0.35, 0.65) * shade)[..., None]


def ruled_paper(image, rng, squared: bool = False):
    """Printed lines, pale blue: ruled paper (perhaps with a red margin) or squared."""
    height, width = image.shape[:2]
    spacing = rng.uniform(16, 28) if squared else rng.uniform(22, 40)
    thick = int(rng.integers(1, 3))
    lines = np.zeros((height, width), np.float32)
    for row in np.arange(rng.uniform(0, spacing), height, spacing).astype(int):
        lines[row : row + thick] = 1
    if squared:
        for column in np.arange(rng.uniform(0, spacing), width, spacing).astype(int):
            lines[:, column : column + thick] = 1
    colour = np.clip(np.array([0.55, 0.72, 0.95]) + rng.normal(0, 0.05, 3), 0, 1)
    image = image * (1 - lines[..., None] * (1 - colour))
    if not squared and rng.random() < 0.5:
        margin = int(rng.uniform(0.08, 0.25) * width)
        image[:, margin : margin + 2] *= (0.95, 0.5, 0.5)
    return image


def squared_paper(image, rng):
    """Squared (graph) paper."""
    return ruled_paper(image, rng, squared=True)


def rotate(image, rng):
    """The page or the phone turned by up to 15 degrees."""
    angle = rng.uniform(-15, 15)
    return ndimage.rotate(image, angle, axes=(1, 0), reshape=False, order=1, mode="nearest")


def perspective(image, rng):
    """The phone held at a slant: each corner moved by up to 8% of the picture."""
    height, width = image.shape[:2]
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], float)
    moved = corners + rng.uniform(-0.08, 0.08, (4, 2)) * [width, height]
    # For each output pixel (a corner of the output) the source pixel (a moved corner).
    rows = []
    for (x, y), (u, v) in zip(corners, moved, strict=True):
        rows.append(([x, y, 1, 0, 0, 0, -u * x, -u * y], u))
        rows.append(([0, 0, 0, x, y, 1, -v * x, -v * y], v))
    matrix, target = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    homography = np.append(np.linalg.solve(matrix, target), 1).reshape(3, 3)
    y, x = np.mgrid[0:height, 0:width]
    u, v, w = homography @ np.stack([x.ravel(), y.ravel(), np.ones(x.size)])
    coords = [v / w, u / w]
    channels = [
        ndimage.map_coordinates(image[..., c], coords, order=1, mode="nearest") for c in range(3)
    ]
    return np.stack(channels, axis=-1).reshape(image.shape)


def camera_blur(image, rng):
    """Out of focus (Gaussian) or a shaking hand (a short straight motion blur)."""
    if rng.random() < 0.5:
        sigma = rng.uniform(1.2, 3.0)
        return ndimage.gaussian_filter(image, (sigma, sigma, 0))
    length, angle = int(rng.integers(7, 16)), rng.uniform(0, np.pi)
    kernel = np.zeros((length, length), np.float32)
    steps = np.linspace(-(length - 1) / 2, (length - 1) / 2, 4 * length)
    rows = np.rint(length // 2 + steps * np.sin(angle)).astype(int)
    cols = np.rint(length // 2 + steps * np.cos(angle)).astype(int)
    kernel[rows, cols] = 1
    kernel /= kernel.sum()
    return np.stack([ndimage.convolve(image[..., c], kernel) for c in range(3)], axis=-1)


def sensor_noise(image, rng, sigma=(0.03, 0.09)):
    """A small sensor in poor light: colour and brightness noise, slightly smoothed."""
    spread = rng.uniform(*sigma)
    noise = rng.normal(0, spread, image.shape) + rng.normal(0, spread / 2, image.shape[:2] + (1,))
    return image + ndimage.gaussian_filter(noise, (0.5, 0.5, 0)).astype(np.float32)


def jpeg(image, rng, quality=(5, 30)):
    """Heavy JPEG compression, saved and decoded in memory: blocks and ringing."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, "JPEG", quality=int(rng.integers(*quality)))
    return np.asarray(Image.open(buffer).convert("RGB"), np.float32) / 255.0


def _resize(image, size):
    height, width = size
    return np.stack(
        [
            np.asarray(
                Image.fromarray(image[..., c], mode="F").resize(
                    (width, height), Image.Resampling.BOX
                )
            )
            for c in range(3)
        ],
        axis=-1,
    )


def small_in_photo(image, rng):
    """The digit small and off-centre in a large photo of the page."""
    height, width = PHOTO
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    page = np.ones((height, width, 3), np.float32) * np.median(border, 0)
    side = int(rng.uniform(0.15, 0.3) * CANVAS * 2)  # the digit about 25-70 px tall
    # A row of digits keeps its shape: as tall as a lone digit's square, as wide as it is.
    rows, cols = image.shape[:2]
    scale = min(side / rows, (width - 1) / cols)
    size = np.array([max(1, round(rows * scale)), max(1, round(cols * scale))])
    small = _resize(np.ascontiguousarray(image, np.float32), tuple(size))
    centre = np.array([height, width]) / 2
    offset = rng.uniform(0.12, 0.3, 2) * [height, width] * rng.choice([-1, 1], 2)
    top, left = np.clip(centre + offset - size / 2, 0, [height, width] - size).astype(int)
    page[top : top + size[0], left : left + size[1]] = small
    return paper_texture(page, rng)  # over the pasted digit too: no seam around it


def specks(image, rng):
    """Dust and specks: dark dots of one to a few pixels, and short hairs."""
    height, width = image.shape[:2]
    dust = Image.new("L", (2 * width, 2 * height))
    draw = ImageDraw.Draw(dust)
    for _ in range(int(rng.integers(20, 80))):
        x, y = rng.uniform(0, 1, 2) * [2 * width, 2 * height]
        radius = rng.uniform(0.6, 3.0) * 2
        draw.ellipse(
            (x - radius, y - radius, x + radius, y + radius), fill=int(rng.integers(80, 255))
        )
    for _ in range(int(rng.integers(0, 4))):
        start = rng.uniform(0, 1, 2) * [2 * width, 2 * height]
        hair = np.cumsum(rng.normal(0, 8, (5, 2)), axis=0) + start
        draw.line([tuple(start), *map(tuple, hair)], fill=200, width=2)
    alpha = np.asarray(dust.resize((width, height), Image.Resampling.BOX), np.float32) / 255.0
    return image * (1 - 0.85 * alpha)[..., None]


def paper_edge(image, rng):
    """The sheet's edge at one side, a darker table beyond it (the picture grows)."""
    side = int(rng.integers(4))  # turn the chosen side to the left, work there, turn back
    page = np.rot90(image, side)
    height = page.shape[0]
    depth = int(rng.uniform(0.12, 0.3) * page.shape[1])
    page = np.pad(page, ((0, 0), (depth, 0), (0, 0)), mode="edge")
    y, x = np.mgrid[0 : page.shape[0], 0 : page.shape[1]]
    edge = depth * rng.uniform(0.5, 0.9) + np.tan(np.radians(rng.uniform(-6, 6))) * (y - height / 2)
    tables = [(0.3, 0.2, 0.12), (0.45, 0.32, 0.2), (0.22, 0.22, 0.24), (0.08, 0.08, 0.08)]
    grain = ndimage.gaussian_filter(rng.normal(0, 1, page.shape[:2]), (12, 1)) * 0.15
    shade = 1 - 0.4 * np.exp(-np.clip(edge - x, 0, None) / 6)  # the sheet's own shadow
    table = np.asarray(tables[rng.integers(len(tables))]) * ((1 + grain) * shade)[..., None]
    on_table = np.clip(edge - x + 0.5, 0, 1)[..., None]
    return np.ascontiguousarray(np.rot90(page * (1 - on_table) + table * on_table, -side))


CONDITIONS = {
    "clean": (),
    "texture": (paper_texture,),
    "lighting": (uneven_lighting,),
    "shadow": (cast_shadow,),
    "coloured": (coloured,),
    "red-green": (red_on_green,),
    "ballpoint": (ballpoint,),
    "pencil": (pencil,),
    "ruled": (ruled_paper,),
    "squared": (squared_paper,),
    "rotated": (rotate,),
    "perspective": (perspective,),
    "blur": (camera_blur,),
    "sensor-noise": (sensor_noise,),
    "jpeg": (jpeg,),
    "small": (small_in_photo,),
    "chalkboard": (chalkboard,),
    "inverted": (inverted,),
    "specks": (specks,),
    "paper-edge": (paper_edge,),
    # An ordinary phone photo: several mild conditions at once.
    "photo": (
        ballpoint,
        paper_texture,
        uneven_lighting,
        rotate,
        perspective,
        partial(sensor_noise, sigma=(0.01, 0.03)),
        partial(jpeg, quality=(60, 90)),
    ),
}


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(image) * 255), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- cases and galleries
LETTERS = "AKMWXREH"
NEGATIVES = ("letter", "blank", "hand-letter", "scribble", "noise", "blank")  # in turn


def ink_shape(source, rng: np.random.Generator, pen: str | None = None):
    """``(mask, label)`` for a case's source; see ``make_case``."""
    if isinstance(source, tuple):
        digit, label = source
        return mnist_shape(digit, rng), int(label)
    if isinstance(source, int | np.integer):
        return mouse_shape(int(source), rng, pen or str(rng.choice(list(PENS)))), int(source)
    if source == "blank":
        return np.zeros((CANVAS, CANVAS), np.float32), None
    if source == "scribble":
        return scribble_shape(rng), None
    if isinstance(source, str) and source.startswith("hand-") and source[5:] in STROKES:
        return mouse_shape(source[5:], rng, pen or str(rng.choice(list(PENS)))), None
    if isinstance(source, str) and len(source) == 1 and source.isalpha():
        return letter_shape(source, rng), None
    raise ValueError(f"unknown case source {source!r}")


def make_case(condition: str, source, rng: np.random.Generator, pen: str | None = None):
    """One labelled picture: ``(uint8 RGB image, label)``; label None for a non-digit.

    ``source``: ``(digit28, label)`` for MNIST handwriting; an ``int`` 0-9 for a mouse
    drawing (``pen`` "thin" or "thick", random if None); a letter such as ``"K"``
    (printed) or ``"hand-K"`` (drawn); ``"scribble"``, ``"blank"`` or ``"noise"``.
    """
    if isinstance(source, str) and source == "noise":
        image, label = noise_picture(rng), None
    else:
        mask, label = ink_shape(source, rng, pen)
        image = np.repeat(1.0 - mask[..., None], 3, axis=2)
    for condition_step in CONDITIONS[condition]:
        image = condition_step(image, rng)
    return to_uint8(image), label


class Case(NamedTuple):
    name: str  # file stem: c0042_shadow_7, "x" for a non-digit
    image: np.ndarray
    label: int | None
    condition: str
    source: str  # mnist#<test index>, mouse-thin, mouse-thick, letter#K, blank, noise, ...


def make_gallery(
    mnist_images: np.ndarray, mnist_labels: np.ndarray, n: int, seed: int = 0, negatives=1 / 6
) -> list[Case]:
    """``n`` cases: digits spread evenly over every condition (half MNIST handwriting,
    half mouse drawings), then a ``negatives`` share of non-digits to be refused.

    Each case has its own generator seeded by ``(seed, index)``, so one case can be
    remade alone. Pass MNIST *test* digits: the gallery measures, it never trains.
    """
    names = list(CONDITIONS)
    n_negative = round(n * negatives)
    order = np.random.default_rng(seed).permutation(len(mnist_images))
    turns: dict[str, int] = {}  # how many of each kind of non-digit so far
    cases, n_mnist = [], 0
    for index in range(n):
        rng = np.random.default_rng([seed, index])
        pen = None
        if index < n - n_negative:
            condition = names[index % len(names)]
            # Turn by turn, every condition sees each kind of ink alike.
            turn = index % len(names) + index // len(names)
            kind = ("mnist", "mouse-thin", "mnist", "mouse-thick")[turn % 4]
            if kind == "mnist":
                which = int(order[n_mnist % len(order)])
                source, kind = (mnist_images[which], mnist_labels[which]), f"mnist#{which}"
                n_mnist += 1
            else:
                source, pen = int(rng.integers(10)), kind[6:]
        else:
            kind = NEGATIVES[(index - n + n_negative) % len(NEGATIVES)]
            turn = turns[kind] = turns.get(kind, -1) + 1
            condition = "clean" if kind == "noise" else names[turn % len(names)]
            source = kind
            if kind in ("letter", "hand-letter"):
                letter = LETTERS[turn % len(LETTERS)]
                source = letter if kind == "letter" else f"hand-{letter}"
                kind = f"{kind}#{letter}"
        image, label = make_case(condition, source, rng, pen)
        mark = "x" if label is None else label
        cases.append(Case(f"c{index:04d}_{condition}_{mark}", image, label, condition, kind))
    return cases
