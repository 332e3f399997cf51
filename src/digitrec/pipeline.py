"""From any picture of a digit to an MNIST-like 28x28 image: pure array functions.

MNIST digits are white ink on black, fitted into a 20x20 box keeping their aspect ratio,
and placed in 28x28 so that their centre of mass is at the centre. A phone photo of a
digit on paper is nothing like that, so every stage below undoes one difference:

    grey -> working size -> a note on a table? paint the table over -> ink map (polarity
    + lighting) -> mask (threshold, specks, ruled lines, shading, paper edges, a pen
    lying beside the digit) -> stroke thickness -> crop, fit 20x20, centre of mass

Each stage is a function of arrays, tested on small synthetic arrays; ``normalize``
runs them all and ``normalize_stages`` returns every intermediate for ``--explain``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

BOX, SIZE = 20, 28  # MNIST: digit fitted into 20x20, centred by mass in 28x28
MIN_SIDE, MAX_SIDE = 64, 384  # working resolution: enough for morphology, cheap enough
MIN_INK = 0.12  # weakest ink contrast (relative to paper) that counts as writing
MIN_DIGIT = 6  # pixels at working size: a smaller mark is dust, not writing
TARGET_STROKE = 0.13  # MNIST stroke width as a fraction of the 20-pixel box
UNEVEN = 0.1  # light falling off by more than this across the page is uneven lighting
LINE_SPAN = 0.8  # a ruled line runs straight across at least this share of the picture
LINE_BESIDE = 0.5  # ... with ink beside it along at most this share of it (``paper_beside``)
# A piece along at least EDGE_ALONG of one side that reaches less than EDGE_BAND of the
# way in is a band along the edge (a paper edge, the table), not writing.
EDGE_ALONG, EDGE_BAND = 0.8, 0.35
EDGE_CLEAR = 1.0  # on a page, what the edge cuts this many strokes from the digit is not it
# When what is taken for ink covers this share of the picture's outermost pixels, the
# picture may be a tight crop of a bold digit read with the wrong polarity (see
# ``polarity_unsure``). Chosen on bold MNIST *training* digits cropped to their ink:
# read with the right polarity, at most 0.43 of their border is ink (95% at most 0.31);
# read with the wrong one, at least 0.29 (95% at least 0.62).
BORDER_INK = 0.35
# Paper grain, dust or specks with nothing written: the largest mark is no bigger than
# CLUTTER_RATIO times the largest of the CLUTTER_PIECES or more marks away from it. On
# 600 gallery digits (seed 5) that ratio was at least 18 wherever 5 or more marks lay
# away from the digit; on blank textured or specked pages, at most 2.
CLUTTER_RATIO, CLUTTER_PIECES = 3.0, 10
# A digit whose ink reaches all four edges of a square picture may have been stretched to
# fill it, as Semeion's scanner did: a 1 with a flag then looks like a 7. Such a picture is
# also read narrowed to these shares of its width (``narrow``), and the readings vote
# (``predict.best_readings``). Chosen on held-out MNIST digits and on pen-stroke digits
# drawn with a fresh seed, both stretched to fill 16x16 (``bench/tight_crops.py``).
NARROWER = (0.8, 0.65, 0.5)
# A digit stretched to fill its box fills a square; one merely cropped to its ink keeps
# its own shape, mostly taller than wide. Square: sides within this ratio. (It halved the
# held-out MNIST digits cropped to their ink that were read narrowed, 866 to 404 of 2000.)
SQUARE = 1.25
# Ink is darker than the paper around it. A piece with at least SHADE of its
# surroundings as dark as itself (within SHADE_MARGIN) is shading, not writing: the tip
# of a hard shadow where its edge meets the picture's (``drop_shading``). Wedges measure
# 0.4-0.5. On a development gallery (630 MNIST *training* digits and mouse strokes, seed
# 401; 630 blank pages, seed 402) digits read right went 621 -> 624, blanks refused
# 614 -> 623.
SHADE, SHADE_MARGIN = 0.3, 0.05
# A piece at the picture's border with this share of the ring around it (from one to three
# stroke widths out) darker than midway between its ink and the paper is the rim of a
# darker region beyond it, not writing: the table past a sheet's edge.
REGION_RIM = 0.4
FRAME, FRAME_THIN = 0.95, 0.08  # a box printed on a form: sides this filled, this thin
FRAME_LINE = 0.33  # a row (column) of a box's edge band this filled is part of its line
UNDER_FLAT = 2.5  # a comb under a digit is at least this flat (width / height)
UNDERLINE_FLAT, UNDER_GAP, UNDER_NARROW = 4.0, 0.05, 0.3  # an underline: see ``underlines``
RING_INNER, RING_AROUND, RING_BINS = 0.3, 0.85, 32  # a circle round the digit: see ``rings``
# A sheet of paper (a sticky note, an index card) lying on a darker table that fills more
# of the picture than the sheet does: see ``find_sheet``.
# The sheet covers this share of the picture: less than the table if it was taken for ink,
# else at most SHEET_PAGE (beyond that, a page with a sliver of table at its edge).
SHEET_SHARE, SHEET_PAGE = (0.1, 0.6), 0.9
SHEET_SOLID = 0.96  # ... and this share of its hull: paper is flat, its edges straight
SHEET_STEP = 0.1  # ... its edge is a step in grey at least this high
SHEET_CORNER, SHEET_ARC = 50, 0.05  # ... and one corner in view turns this far (``turns``)
SHEET_STROKE = 0.2  # the writing's strokes are at most this thick next to the sheet
SHEET_LONG = 3.0  # ... and strokes: the largest mark spans this many stroke widths or more
# A pen or a pencil lying on the page beside the writing (``drop_objects``): a straight,
# solid bar (PEN_FILL of the rectangle its spread spans, PEN_ASPECT times as long as wide),
# clear of the writing (PEN_CLEAR of its strokes' width), and either PEN_THICK times as wide
# as its strokes or PEN_LONG times as long as the writing is tall. The writing beside it
# is digit-sized: PEN_WRITING of the picture (also in height), and of the bar's length.
PEN_FILL, PEN_ASPECT, PEN_CLEAR, PEN_THICK, PEN_LONG = 0.75, 3.0, 2.0, 2.5, 2.0
PEN_WRITING = 0.1, 0.15
PEN_ONE = 1.3, 45.0  # a bar no longer than this x the writing's height, this many degrees
# from upright, in the writing's row, is a 1 however bold
RING_BAND, RING_BAR = 2.0, 5.0  # a circle the digit touches: see ``ring_band``
RING_FILL = (0.68, 0.86)  # ... fills this share of its box, filled in, as an ellipse does
RING_HOLLOW = 2.0  # ... and filled in, it is at least this many times its ink
RING_DIGIT = 0.5  # ... and the digit inside it is at least this share of its height


def to_grey(image: np.ndarray) -> np.ndarray:
    """``float32`` grey in [0, 1] along the colour axis with the most contrast.

    Luma loses red ink on green paper (both can have the same brightness); the first
    principal component of the pixel colours keeps it. Grey input is returned scaled.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        return image.astype(np.float32) / 255.0
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected a grey (h, w) or colour (h, w, 3|4) image, got {image.shape}")
    rgb = image[..., :3].reshape(-1, 3).astype(np.float32) / 255.0
    luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    sample = slice(None, None, max(1, len(rgb) // 20000))  # enough pixels to find the axis
    centred = rgb - rgb[sample].mean(axis=0)
    axis = np.linalg.svd(centred[sample], full_matrices=False)[2][0]
    projected = centred @ axis
    if np.dot(projected[sample], luma[sample] - luma[sample].mean()) < 0:
        projected = -projected  # keep "brighter" meaning brighter
    # Compare contrast along unit vectors: luma is a projection on weights of length
    # 0.669, so luma / 0.669 is in the same units as the principal axis. For pure greys
    # the principal axis gains at most 1.16x over luma; only a clear gain means colour.
    # 0.1/99.9 percentiles: a thin stroke may cover well under 1% of a photo.
    luma_spread = (np.percentile(luma, 99.9) - np.percentile(luma, 0.1)) / 0.669
    pca_spread = np.percentile(projected, 99.9) - np.percentile(projected, 0.1)
    if pca_spread <= 1.5 * luma_spread:
        grey = luma
    else:
        grey = (projected - projected.min()) / max(np.ptp(projected), 1e-6)
    return grey.reshape(image.shape[:2]).astype(np.float32)


def working_scale(shape: tuple[int, ...]) -> float:
    """The scale that brings a picture's longer side into [MIN_SIDE, MAX_SIDE]."""
    longest = max(shape[:2])
    return MIN_SIDE / longest if longest < MIN_SIDE else min(1.0, MAX_SIDE / longest)


def working_size(grey: np.ndarray) -> np.ndarray:
    """Rescale so the longer side lies in [MIN_SIDE, MAX_SIDE]: tiny scans get room for
    morphology, big photos get cheap."""
    return rescale(grey, working_scale(grey.shape))


def rescale(grey: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return grey
    height, width = grey.shape
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    method = Image.Resampling.BILINEAR if scale > 1 else Image.Resampling.BOX
    return np.asarray(Image.fromarray(grey, mode="F").resize(size, method))


def shrink(image: np.ndarray, scale: float) -> np.ndarray:
    """A ``uint8`` picture that will be scaled by ``scale`` at working size, first averaged
    over blocks of k x k pixels where that still leaves it twice the working size: a
    12-megapixel photo is then made grey at a sixteenth of its pixels (0.1 s, not 1.5 s).
    Other arrays are returned as they are."""
    factor = int(0.5 / scale) if scale > 0 else 1
    if factor < 2 or image.dtype != np.uint8 or image.ndim not in (2, 3):
        return image
    if image.ndim == 3 and image.shape[2] not in (3, 4):
        return image  # to_grey says what is wrong with it
    return np.asarray(Image.fromarray(image).reduce(factor))


def ink_is_dark(grey: np.ndarray) -> bool:
    """Is the writing darker than the background? The background is the most common
    brightness; ink is the minority on the far side of it. The 0.1/99.9 percentiles see
    a thin stroke covering well under 1% of the picture (a light hairline on a dark
    screen).

    A shadow over most of the page makes both sides look alike (dark ink in the shadow,
    lit paper beyond it). When the two are within a factor of two, the question is
    asked again of the picture with its lighting taken out: each pixel against the
    median of a neighbourhood half the picture wide, which follows a shadow's edge but
    not a stroke. Clear pictures never take this path, so MNIST-like input is unchanged.
    """
    background = np.median(grey)
    darker = background - np.percentile(grey, 0.1)
    lighter = np.percentile(grey, 99.9) - background
    if min(darker, lighter) <= 0.5 * max(darker, lighter):
        return bool(darker >= lighter)
    relative = grey - local_median(grey, 0.5)
    return bool(-np.percentile(relative, 0.1) >= np.percentile(relative, 99.9))


def polarity_unsure(grey: np.ndarray, dark: bool) -> bool:
    """Could the writing be the *other* side of ``ink_is_dark``'s answer?

    ``ink_is_dark`` takes the most common brightness for the background. In a tight crop
    of a bold digit (a 16x16 scan, a thick brush on a small canvas) the ink covers more of
    the picture than the background does, and a round 0 turns into its own hole. What is
    then called ink lies all along the picture's edge, where a digit only touches it.
    The pipeline cannot tell the two readings apart by itself; the model can
    (``predict.best_readings``), so both are read and the more legible one is kept.
    """
    bright = grey > otsu_threshold(grey)
    ink = ~bright if dark else bright
    border = np.concatenate([ink[0], ink[-1], ink[1:-1, 0], ink[1:-1, -1]])
    if border.mean() < BORDER_INK:
        return False
    return lighting_falloff(grey if dark else 1.0 - grey) <= UNEVEN


def find_sheet(grey: np.ndarray, dark: bool) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """A sheet of paper lying on a table: ``(sheet, grey, dark)``, the sheet (filled in,
    writing included), the picture with the table painted over with the sheet's paper
    (``paint_beyond``), and the polarity of the writing on it. None if the picture shows
    no table round a sheet.

    A sticky note photographed on a wooden table covers less of the picture than the
    table does, so the table's brightness is the most common one and the note, lighter,
    is taken for ink (``ink_is_dark``'s answer ``dark``): one big blob. When the note
    covers more, the polarity is right, but the table in the corners is ink too. Either
    way the sheet is the largest piece of one side of the picture's threshold: flat and
    convex, a rectangle seen at an angle (perhaps cut by the picture's edges), with
    writing on it, strokes thin next to the sheet. Nothing else in the picture may look
    like writing. A digit is none of that: its strokes are thin themselves, and the
    holes of a bold 0, 6, 8 or 9 are round, not strokes.
    """
    if max(grey.shape) < 2 * MIN_SIDE:
        return None  # a tight crop, a 16x16 scan: no photo of a table
    threshold = otsu_threshold(grey)
    taken = grey <= threshold if dark else grey > threshold  # what ``dark`` calls ink
    for side, most in ((taken, SHEET_SHARE[1]), (~taken, SHEET_PAGE)):
        if not SHEET_SHARE[0] <= side.mean() <= most:
            continue  # the usual case, a little ink on a page: cheap to rule out
        found = _sheet(grey, side, most)
        if found is not None:
            return found
    return None


def _sheet(
    grey: np.ndarray, side: np.ndarray, most: float
) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """``find_sheet`` for the largest piece of one ``side`` of the threshold."""
    sheet = ndimage.binary_fill_holes(largest_piece(side))
    if not SHEET_SHARE[0] <= sheet.mean() <= most:
        return None
    solid, corners = outline(sheet)
    if solid < SHEET_SOLID:
        return None
    # Its edge is a step in brightness: where light falls off across a page, the
    # threshold splits it along a line with the same grey on either side.
    edge = sheet & ~ndimage.binary_erosion(sheet, iterations=3, border_value=1)
    beside = ndimage.binary_dilation(sheet, iterations=3) & ~sheet
    if abs(np.median(grey[edge]) - np.median(grey[beside])) < SHEET_STEP:
        return None
    # One of its corners in view: the table lies on two sides of it at least. A strip
    # of table along one side, or a shadow's edge, crosses the picture from edge to edge.
    # What ``turns`` sees of the outline round that corner is clear of the picture's
    # edge, where a ragged edge meets it in a hook.
    height, width = grey.shape
    margin = 0.02 * min(height, width)
    rows, cols = corners[:, 0], corners[:, 1]
    at_edge = (rows <= margin) | (rows >= height - margin)
    at_edge |= (cols <= margin) | (cols >= width - margin)
    along, perimeter = arc_positions(corners)
    apart = np.abs(along[:, None] - along[None, :])
    apart = np.minimum(apart, perimeter - apart)  # round the outline either way
    near_edge = ((apart <= SHEET_ARC / 2 * perimeter) & at_edge[None, :]).any(axis=1)
    if not np.any((turns(corners, SHEET_ARC) >= SHEET_CORNER) & ~near_edge):
        return None
    painted = paint_beyond(grey, sheet)
    dark = ink_is_dark(painted)
    # The writing, clear of the sheet's edge: what the threshold finds along the edge is
    # its outline or its shadow.
    clear = ndimage.binary_erosion(
        sheet, iterations=max(3, round(0.02 * min(grey.shape))), border_value=1
    )
    marks = clear & ink_mask(ink_map(painted, dark))
    if not marks.any():
        return None
    # Depths inside the sheet, with the picture's edge counted as sheet (it may run on).
    sheet_depth = ndimage.distance_transform_edt(np.pad(sheet, 1, mode="edge"))[1:-1, 1:-1]
    depth = ndimage.distance_transform_edt(marks)
    stroke = depth.max()
    biggest = largest_piece(marks)
    span = span_of(biggest)
    if stroke > SHEET_STROKE * sheet_depth.max() or span < max(
        MIN_DIGIT, SHEET_LONG * 2 * depth[biggest].max()
    ):
        return None
    # Nothing beyond it looks like writing as big as that on it: the digit is not
    # elsewhere (an app's dark palette with light lettering on it, beside a canvas with
    # a dark digit). A table is broad; writing is strokes, long next to their width.
    for beyond in (side & ~sheet, ~side & ~sheet):
        labels, count = ndimage.label(beyond, structure=np.ones((3, 3), bool))
        if count == 0:
            continue
        boxes = ndimage.find_objects(labels)
        spans = np.array([max(b[0].stop - b[0].start, b[1].stop - b[1].start) for b in boxes])
        depth = ndimage.distance_transform_edt(beyond)
        depths = np.asarray(ndimage.maximum(depth, labels, np.arange(1, count + 1)))
        if np.any((spans >= span) & (spans >= SHEET_LONG * 2 * depths)):
            return None
    return sheet, painted, dark


def arc_positions(polygon: np.ndarray) -> tuple[np.ndarray, float]:
    """How far along a closed polygon's outline each corner lies, and its length."""
    lengths = np.linalg.norm(np.roll(polygon, -1, axis=0) - polygon, axis=1)
    return np.concatenate([[0.0], np.cumsum(lengths)[:-1]]), float(lengths.sum())


def turns(polygon: np.ndarray, arc: float = 0.05) -> np.ndarray:
    """How far a convex polygon's outline (distinct corners) turns, in degrees, over
    ``arc`` of its length centred on each corner: about 90 at a rectangle's corner
    however finely it is drawn in pixels, under 40 anywhere on an ellipse no flatter
    than 8:5."""
    edges = np.roll(polygon, -1, axis=0) - polygon
    heading = np.unwrap(np.arctan2(edges[:, 0], edges[:, 1]))  # of the edge from each corner
    loop = 2 * np.pi * np.sign(heading[-1] - heading[0])  # one way round
    starts, perimeter = arc_positions(polygon)

    def heading_at(position: np.ndarray) -> np.ndarray:
        rounds = np.floor(position / perimeter)
        edge = np.searchsorted(starts, position - rounds * perimeter, side="right") - 1
        return heading[edge] + rounds * loop

    half = arc * perimeter / 2
    return np.degrees(np.abs(heading_at(starts + half) - heading_at(starts - half)))


def paint_beyond(grey: np.ndarray, sheet: np.ndarray) -> np.ndarray:
    """The picture with what lies beyond the sheet (and a rim just inside its edge, where
    its outline and shadow lie) painted over with paper: each pixel as the sheet's paper
    nearest to it, averaged over 5% of the picture (so that light falling off across the
    sheet carries on past its edge, and its grain and thin writing average out)."""
    inside = ndimage.binary_erosion(sheet, iterations=2, border_value=1)
    if not inside.any():
        return grey
    size = max(3, int(0.05 * min(grey.shape)) | 1)
    weight = inside.astype(np.float32)
    paper = ndimage.uniform_filter(grey * weight, size) / np.maximum(
        ndimage.uniform_filter(weight, size), 1e-6
    )
    _, (rows, cols) = ndimage.distance_transform_edt(~inside, return_indices=True)
    return np.where(inside, grey, paper[rows, cols]).astype(grey.dtype)


def largest_piece(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected piece of a mask that has one."""
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
    return labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1


def span_of(piece: np.ndarray) -> int:
    """The longer side of a piece's bounding box."""
    rows, cols = np.nonzero(piece)
    return int(max(np.ptp(rows), np.ptp(cols)) + 1)


def outline(region: np.ndarray) -> tuple[float, np.ndarray]:
    """The share of its convex hull that a region fills (1 for a convex one), and the
    hull's corners (row, column)."""
    from scipy.spatial import ConvexHull, QhullError

    rows, cols = np.nonzero(region & ~ndimage.binary_erosion(region))
    # Each boundary pixel's four corners: the hull of the pixels' squares, not centres.
    points = np.concatenate(
        [np.column_stack([rows + dy, cols + dx]) for dy in (0, 1) for dx in (0, 1)]
    ).astype(np.float64)
    try:
        hull = ConvexHull(points)
    except QhullError:  # a line of pixels: no area
        return 0.0, points[:0]
    return float(np.count_nonzero(region) / hull.volume), points[hull.vertices]


def on_sheet(grey: np.ndarray, dark: bool) -> tuple[np.ndarray, bool]:
    """``(grey, dark)`` for the writing on a sheet lying on a table (``find_sheet``):
    the table painted over, and the writing's polarity. Any other picture comes back as
    it was."""
    found = find_sheet(grey, dark)
    return (grey, dark) if found is None else found[1:]


def fills_frame(mask: np.ndarray) -> bool:
    """Does the ink reach all four edges of a square picture? Then the digit may have
    been stretched to fill it (see ``NARROWER``)."""
    height, width = mask.shape
    return max(height, width) <= SQUARE * min(height, width) and reaches_every_edge(mask)


def reaches_every_edge(mask: np.ndarray) -> bool:
    """Does the mask touch all four edges of the picture, as a tight crop's ink does?"""
    return bool(mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any())


def narrow(grey: np.ndarray, share: float, dark: bool) -> np.ndarray:
    """The picture squeezed to ``share`` of its width and centred on paper as wide as it
    was: what a digit stretched to fill its box looked like before (``NARROWER``)."""
    height, width = grey.shape
    narrower = max(1, round(width * share))
    if narrower >= width:
        return grey
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    out = np.full_like(grey, np.percentile(border, 75 if dark else 25))
    left = (width - narrower) // 2
    squeezed = Image.fromarray(grey, mode="F").resize((narrower, height), Image.Resampling.BOX)
    out[:, left : left + narrower] = np.asarray(squeezed)
    return out


def local_median(grey: np.ndarray, width: float, side: int = 48) -> np.ndarray:
    """The median brightness around each pixel over ``width`` of the picture's longer
    side: the lighting, without the writing. Computed at ``side`` pixels and scaled
    back, since lighting is smooth and a wide median at full size is slow."""
    height, full_width = grey.shape
    scale = side / max(height, full_width)
    size = (max(1, round(full_width * scale)), max(1, round(height * scale)))
    small = np.asarray(Image.fromarray(grey, mode="F").resize(size, Image.Resampling.BOX))
    window = max(3, int(side * width) | 1)
    median = ndimage.median_filter(small, size=window, mode="nearest")
    return np.asarray(
        Image.fromarray(median, mode="F").resize((full_width, height), Image.Resampling.BILINEAR)
    )


def lighting_falloff(paper_bright: np.ndarray, side: int = 32) -> float:
    """How much the light falls off across the page: the relative range of a quadratic
    surface fitted to the paper alone (pixels darker than the fit are dropped and it is
    fitted again), about 0 on an evenly lit page or a scan, 0.3-0.6 under a lamp."""
    height, width = paper_bright.shape
    scale = min(1.0, side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = np.asarray(Image.fromarray(paper_bright, mode="F").resize(size, Image.Resampling.BOX))
    y, x = np.mgrid[0 : small.shape[0], 0 : small.shape[1]]
    y, x = (y + 0.5) / small.shape[0] * 2 - 1, (x + 0.5) / small.shape[1] * 2 - 1
    terms = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], -1).reshape(-1, 6)
    values = small.ravel().astype(np.float64)
    paper = values >= np.percentile(values, 40)
    for _ in range(4):
        if paper.mean() < 0.5:  # mostly writing: a tight crop, not a page
            return 0.0
        a = terms[paper]  # least squares by the normal equations: 6x6, a fraction of a ms
        fit = terms @ np.linalg.solve(a.T @ a + 1e-9 * np.eye(6), a.T @ values[paper])
        paper = values - fit > -0.03
    # Only where the fit stands on paper: beyond it a quadratic is free to swing.
    fit = fit[paper]
    return float(np.ptp(fit) / max(fit.max(), 1e-3)) if fit.size else 0.0


def ink_map(grey: np.ndarray, dark: bool | None = None, extend: bool | None = None) -> np.ndarray:
    """``float32`` ink strength in [0, 1], 0 on paper, whatever the polarity or lighting.

    Paper brightness is estimated locally by a grey closing wider than any stroke, so a
    shadow or a lighting gradient darkens the estimate along with the ink; ink is the
    relative drop below it. ``dark``: the polarity, decided by ``ink_is_dark`` if None.
    ``extend``: carry the picture past its edges by repeating them, not by mirroring
    (below); decided by the lighting if None.
    """
    if dark is None:
        dark = ink_is_dark(grey)
    paper_bright = grey if dark else 1.0 - grey
    height, width = paper_bright.shape
    # Wider than any stroke or dense stroke crossing (an 8's waist), narrower than the
    # picture. (0.4 was picked from 0.22/0.4/0.6 by scores on USPS, Semeion and optdigits
    # in an early ablation, so those figures are slightly optimistic; see the README.)
    window = max(5, int(min(height, width) * 0.4) | 1)
    # On an unevenly lit page the picture is padded once by repeating its edge, so the
    # lighting carries on past the edge as it ran up to it. (scipy pads each pass by
    # mirroring: light falling off towards an edge becomes a valley there, the closing
    # fills it, and the dark side of the page turned into a band of "ink".) On an
    # evenly lit page, mirroring stays: a stroke touching the edge of a tight crop,
    # repeated outwards, would become a slab wider than the closing and vanish.
    if extend is None:
        extend = lighting_falloff(paper_bright) > UNEVEN
    pad = window if extend else 0
    padded = np.pad(paper_bright, pad, mode="edge")
    paper = ndimage.grey_closing(padded, size=(window, window))
    # Smooth the closing's blocks, but never above the closing itself: blurring a
    # shadow's hard edge would raise the paper on its dark side and make a band of ink.
    paper = np.minimum(paper, ndimage.uniform_filter(paper, size=window))
    paper = paper[pad : pad + height, pad : pad + width]
    paper = np.maximum(paper, paper_bright)
    # Relative drop below the paper, but never relative to paper darker than 0.25: a
    # near-uniform picture read with the wrong polarity would otherwise turn a grain of
    # noise on "paper" at 0.1 into ink.
    ink = (paper - paper_bright) / np.maximum(paper, 0.25)
    return np.clip(ink, 0.0, 1.0).astype(np.float32)


def otsu_threshold(values: np.ndarray, bins: int = 128) -> float:
    """The threshold that best splits ``values`` into two classes (Otsu, 1979)."""
    histogram, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    weight = histogram.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(weight)
    w1 = w0[-1] - w0
    m0 = np.cumsum(weight * centres) / np.maximum(w0, 1)
    m1 = (np.sum(weight * centres) - np.cumsum(weight * centres)) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def ink_mask(ink: np.ndarray) -> np.ndarray:
    """Boolean mask of the writing: Otsu threshold, never below MIN_INK or 30% of the peak.

    The peak is about the 40th-strongest pixel, not a percentile: a small digit in a
    large photo may cover a tenth of a percent of it, yet its ink is as strong as any."""
    flat = ink.ravel()
    rank = int(np.clip(flat.size // 200, 1, 40))
    peak = float(np.partition(flat, -rank)[-rank])
    if peak < MIN_INK:
        return np.zeros(ink.shape, bool)
    threshold = max(otsu_threshold(ink), MIN_INK, 0.3 * peak)
    return ink > threshold


def remove_ruled_lines(mask: np.ndarray) -> np.ndarray:
    """Drop straight lines that cross (almost) the whole picture: ruled paper, form boxes.

    A line must also be thin next to the picture (at most 4% of it): in a tight crop a
    digit's own bar can span the whole width, but it is as thick as the digit's strokes.
    Where a stroke crosses a removed line (ink on both sides of it), the crossing is
    put back: squared paper would otherwise cut a thin digit into pieces too small to
    keep.
    """
    cleaned = mask.copy()
    widest = 0
    for axis in (0, 1):  # 0: level lines, 1: upright lines
        length, across = mask.shape[axis], mask.shape[1 - axis]
        run = max(3, int(across * LINE_SPAN))
        shape = (1, run) if axis == 0 else (run, 1)
        lines = ndimage.binary_opening(mask, structure=np.ones(shape, bool))
        if not lines.any():
            continue
        labels, count = ndimage.label(lines)
        for index, box in enumerate(ndimage.find_objects(labels), start=1):
            thickness = box[axis].stop - box[axis].start
            if thickness <= max(2, 0.04 * length) and paper_beside(mask, labels == index, axis):
                cleaned &= ~ndimage.binary_dilation(labels == index)
                widest = max(widest, thickness + 2)
    if widest == 0:
        return cleaned
    return put_back_crossings(cleaned, mask & ~cleaned, widest + 2)


def paper_beside(mask: np.ndarray, line: np.ndarray, axis: int) -> bool:
    """A ruled line has paper on both sides of it along most of its length (LINE_BESIDE),
    strokes crossing it aside. A thin straight run found inside a thick slanted stroke of a
    digit in a tight crop has ink along one side at least: it is no line. ``axis`` 0: the
    line is level (its sides are above and below); 1: upright."""
    line = np.moveaxis(line, axis, 0)
    mask = np.moveaxis(mask, axis, 0)
    above = np.zeros_like(line)
    above[:-2] = line[2:]
    below = np.zeros_like(line)
    below[2:] = line[:-2]
    for beside in (above & ~line, below & ~line):
        inked = np.count_nonzero(beside & mask)
        if beside.any() and inked > LINE_BESIDE * np.count_nonzero(beside):
            return False
    return True


def put_back_crossings(
    kept: np.ndarray, removed: np.ndarray, bridge: int, level_lines: bool = True
) -> np.ndarray:
    """``kept`` with the pixels of a removed line (``removed``) put back where a stroke
    crosses it: where ``kept`` has ink on both sides of the line within ``bridge`` pixels
    (left and right of an upright line; also above and below a level one, unless
    ``level_lines`` is False)."""
    crossed = ndimage.binary_closing(kept, structure=np.ones((1, bridge), bool))
    if level_lines:
        crossed |= ndimage.binary_closing(kept, structure=np.ones((bridge, 1), bool))
    return kept | (removed & crossed)


def drop_frames(mask: np.ndarray) -> np.ndarray:
    """Drop a form's printed boxes, apart or side by side: a piece whose outline is a thin
    rectangle, every side of it straight and filled (FRAME of its length or more) and
    thin next to the box (FRAME_THIN of its shorter side), loses that outline, and the
    thin upright dividers that fill it from top to bottom (boxes side by side); a digit
    written in a box and touching it keeps the rest of its strokes. A written 0 is
    neither thin nor straight enough on all four sides."""
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
    cleaned = mask.copy()
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        height, width = box[0].stop - box[0].start, box[1].stop - box[1].start
        band = max(2, math.ceil(FRAME_THIN * min(height, width)))
        if min(height, width) < 4 * band:
            continue  # a speck or a stroke, too small to be a box round a digit
        piece = labels[box] == index
        sides = [piece[:band].any(axis=0), piece[-band:].any(axis=0)]
        sides += [piece[:, :band].any(axis=1), piece[:, -band:].any(axis=1)]
        inner = [piece[band : 2 * band].any(axis=0), piece[-2 * band : -band].any(axis=0)]
        inner += [piece[:, band : 2 * band].any(axis=1), piece[:, -2 * band : -band].any(axis=1)]
        if min(side.mean() for side in sides) < FRAME or max(i.mean() for i in inner) > 0.5:
            continue  # not a closed outline, or a bold one (a square 0)
        # The outline: the rows and columns of the edge bands that the lines fill (a
        # third of them or more, so a slightly turned box still goes), not the strokes
        # of a digit that cross a band.
        outline = np.zeros_like(piece)
        for rows in (slice(0, band), slice(height - band, height)):
            outline[rows][piece[rows].mean(axis=1) >= FRAME_LINE] = True
        for cols in (slice(0, band), slice(width - band, width)):
            outline[:, cols][:, piece[:, cols].mean(axis=0) >= FRAME_LINE] = True
        # Boxes side by side are one frame with upright dividers from top to bottom.
        full = piece[band:-band].mean(axis=0) >= FRAME
        runs, n_runs = ndimage.label(full)
        for run in range(1, n_runs + 1):
            if np.count_nonzero(runs == run) <= band:
                outline[:, runs == run] = True
        outline &= piece
        kept = put_back_crossings(piece & ~outline, outline, band + 2)
        region = cleaned[box]
        region &= ~(piece & ~kept)
    return cleaned


def drop_shading(mask: np.ndarray, paper_bright: np.ndarray) -> np.ndarray:
    """Drop the pieces of ``mask`` that are not darker than their surroundings: the tip
    of a shadow, where the paper estimate runs across the shadow's edge at the
    picture's border and leaves a thin wedge of "ink".

    Each piece is compared with the ring of paper around it, from just beyond its rim
    to about a stroke width out, each ring pixel against the ink nearest to it. Where a
    SHADE share of the ring is as dark as that ink (within SHADE_MARGIN), the piece only
    continues a darker patch; writing is darker than the paper on every side of it.
    Specks are left alone: ``keep_digit_components`` counts them to tell a grainy blank
    page from writing. Only for pages: in a tight crop, a bold stroke wider than the
    paper estimate's window leaves unmasked ink beside the mask (``Stages.page``).
    """
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count == 0:
        return mask
    reach = max(2.0, stroke_width(mask))
    distance, (rows, cols) = ndimage.distance_transform_edt(~mask, return_indices=True)
    ring = (distance > 1.5) & (distance <= reach + 1.5)
    owner = np.where(ring, labels[rows, cols], 0)  # the piece each ring pixel is nearest to
    # Compared with the ink nearest to it, not the piece's typical ink: a faint stroke
    # that runs into a shadow is lighter than the shadowed paper it left behind.
    as_dark = paper_bright * (1 - SHADE_MARGIN) <= paper_bright[rows, cols]
    ring_size = np.bincount(owner.ravel(), minlength=count + 1)[1:]
    dark_size = np.bincount(owner.ravel(), weights=as_dark.ravel(), minlength=count + 1)[1:]
    boxes = ndimage.find_objects(labels)
    extent = np.array([max(b[0].stop - b[0].start, b[1].stop - b[1].start) for b in boxes])
    speck = extent < max(MIN_DIGIT, 0.03 * min(mask.shape))
    shading = np.flatnonzero((dark_size >= SHADE * np.maximum(ring_size, 1)) & ~speck) + 1
    return mask & ~np.isin(labels, shading) if shading.size else mask


def drop_region_rims(mask: np.ndarray, paper_bright: np.ndarray) -> np.ndarray:
    """Drop the pieces at the picture's border that are the rim of a darker region beyond
    it: the table past a sheet's edge, read as a 1. The sheet's
    shadow on the table is the darkest strip there, and the table further out is lighter
    than the strip, so ``drop_shading`` (surroundings as dark as the piece) keeps it.

    Writing has paper on every side. Each piece at the border is compared with the ring
    from one to three stroke widths beyond it, clear of a blurred stroke's halo: where
    REGION_RIM of the ring is darker than midway between the piece's ink and the ring's
    paper (its brightest tenth), the piece is where a dark region begins."""
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
    edges = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    at_border = np.unique(edges[edges > 0])
    if at_border.size == 0:
        return mask
    width = max(2.0, stroke_width(mask))
    distance, (rows, cols) = ndimage.distance_transform_edt(~mask, return_indices=True)
    ring = (distance > width) & (distance <= 3 * width)
    owner = np.where(ring, labels[rows, cols], 0)
    rims = []
    for index in at_border:
        around = paper_bright[owner == index]
        if around.size == 0:
            continue
        ink = float(np.median(paper_bright[labels == index]))
        middle = (ink + float(np.percentile(around, 90))) / 2
        if np.mean(around < middle) >= REGION_RIM:
            rims.append(index)
    return mask & ~np.isin(labels, rims) if rims else mask


def drop_page_shade(mask: np.ndarray, paper_bright: np.ndarray) -> np.ndarray:
    """What a page's light and surroundings leave as "ink": shading (``drop_shading``),
    then the rim of a darker region beyond the page (``drop_region_rims``). For pages
    only, in ``predict``'s pipeline and ``read``'s rows alike."""
    return drop_region_rims(drop_shading(mask, paper_bright), paper_bright)


def drop_objects(mask: np.ndarray) -> np.ndarray:
    """Drop a pen or a pencil lying on the page beside the writing: a solid straight bar,
    clear of the writing, much thicker than its strokes or much longer than the writing is
    tall (PEN_*), with the bars along it that its light splits off (as long, within one of its
    widths). A 1 is a bar too, but as thick as the digits beside it and no longer; a 4's
    bar drawn apart touches the rest of the 4. When nothing digit-sized lies beside the
    bar, the bar is the writing (a 1 with dust beside it), so it stays."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count < 2:
        return mask
    boxes = ndimage.find_objects(labels)
    height = np.array([b[0].stop - b[0].start for b in boxes])
    extent = np.maximum(height, [b[1].stop - b[1].start for b in boxes])
    sizable = np.flatnonzero(extent >= max(MIN_DIGIT, 0.03 * min(mask.shape)))
    edge = np.zeros(count + 1, bool)
    edge[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = True
    cut = edge[1:]
    shapes = {k: bar_shape(labels[boxes[k]] == k + 1) for k in sizable}
    long = [k for k, (length, width, _, _) in shapes.items() if length >= PEN_ASPECT * width]
    bars = [k for k in long if shapes[k][2] >= PEN_FILL]
    comb = {k: is_form_comb(labels[boxes[k]] == k + 1) for k in sizable} if bars else {}
    objects, widest = np.zeros(mask.shape, bool), 0.0
    for k in bars:
        length, width, _, angle = shapes[k]
        reach = ndimage.distance_transform_edt(labels != k + 1) <= width
        turned = [abs((shapes[j][3] - angle + 90) % 180 - 90) for j in long]
        along = [
            j
            for j, turn in zip(long, turned, strict=True)
            if turn <= 10 and shapes[j][0] >= 0.5 * length and reach[labels == j + 1].any()
        ]
        # The writing it is weighed against stands clear of the picture's edge: what the
        # edge cuts may be another pen, or bits of one. A form's comb is no writing.
        others = [j for j in sizable if j not in along and not cut[j] and not comb[j]]
        if extent[others].max(initial=0) < max(
            PEN_WRITING[0] * min(mask.shape), PEN_WRITING[1] * length
        ):
            continue  # nothing digit-sized beside it: the bar is the writing
        # The writing: the pieces half as tall as its tallest or more (not a bit of the pen;
        # nor a pencil lying flat, longer than the digits are tall, against which a 1
        # would be weighed and go).
        others = [j for j in others if height[j] >= 0.5 * height[others].max()]
        writing = np.isin(labels, np.asarray(others) + 1)
        rows = np.flatnonzero(writing.any(axis=1))
        tall = rows[-1] - rows[0] + 1  # a digit's height, however many pieces it is in
        if tall < PEN_WRITING[0] * min(mask.shape):
            continue  # no taller than a line: a stroke of a digit (a 7's bar drawn apart)
        strokes = stroke_width(writing)
        thing = np.isin(labels, np.asarray(along) + 1)
        if ndimage.distance_transform_edt(~writing)[thing].min() < PEN_CLEAR * strokes:
            continue  # it touches the writing: a stroke of it (a 4's bar drawn apart)
        bar_rows = np.flatnonzero(thing.any(axis=1))
        in_row = min(bar_rows[-1], rows[-1]) - max(bar_rows[0], rows[0]) + 1
        if (
            length <= PEN_ONE[0] * tall
            and abs(angle - 90) <= PEN_ONE[1]
            and in_row >= 0.5 * (bar_rows[-1] - bar_rows[0] + 1)
        ):
            continue  # a 1, bolder than the digits beside it, standing in their row
        if width >= PEN_THICK * strokes or length >= PEN_LONG * tall:
            objects |= thing
            widest = max(widest, width)
    if not objects.any():
        return mask
    # The rest of the thing (a pencil's ferrule and eraser, the tip of a pen) lies
    # within one of its widths of it, and is no bigger than it is wide.
    near = ndimage.distance_transform_edt(~objects) <= widest
    share = np.asarray(ndimage.mean(near, labels, np.arange(1, count + 1)))
    rest = np.flatnonzero((share >= 0.8) & (extent <= 2 * widest)) + 1
    return mask & ~objects & ~np.isin(labels, rest)


def bar_shape(piece: np.ndarray) -> tuple[float, float, float, float]:
    """A piece's length and width, from the spread of its pixels along and across its main
    axis (a solid rectangle's sides), how much of that rectangle it fills, and the
    direction of that axis in degrees."""
    rows, cols = np.nonzero(piece)
    if rows.size < 3:
        return 0.0, 0.0, 0.0, 0.0
    spread, axes = np.linalg.eigh(np.cov(np.stack([rows, cols]).astype(np.float64)))
    width, length = np.sqrt(12 * np.maximum(spread, 0)) + 1
    angle = math.degrees(math.atan2(axes[0, 1], axes[1, 1])) % 180
    return float(length), float(width), float(rows.size / (length * width)), angle


def keep_digit_components(
    mask: np.ndarray, faint: np.ndarray | None = None, page: bool = False
) -> np.ndarray:
    """Keep the digit: its main piece and the pieces near it; drop specks and what lies
    away from it (paper edges, the table, shadows in corners, stray marks) and a line
    drawn under it.

    The main piece is the largest, unless it runs along the picture's edge (a paper
    edge, the table) while another piece stands clear of the border. Nothing is kept
    when the main piece is a speck, or no bigger than the grain or dust around it.
    ``faint``: where there is any ink at all (the mask's pieces included); pieces it joins
    are one stroke that the threshold broke, never a digit and a line under it.
    ``page``: a photo of a page, not a tight crop (``Stages.page``): there a digit clear
    of the picture's edge is all of it, and what the edge cuts a stroke width or more from
    it is something else (a pen lying on the page); in a tight crop the digit's own pieces
    touch the edge.
    """
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count == 0:
        return mask
    index = np.arange(1, count + 1)
    areas = np.asarray(ndimage.sum(mask, labels, index))
    height, width = mask.shape
    slices = ndimage.find_objects(labels)
    boxes = np.array([(b[0].start, b[0].stop, b[1].start, b[1].stop) for b in slices])
    # Border contact: the longest stretch of one side of the picture that a piece lies
    # along. A paper edge or the table runs along a side; a digit in a tight crop only
    # touches it.
    sides = [labels[0], labels[-1], labels[:, 0], labels[:, -1]]
    along = np.array([[np.count_nonzero(side == i) / side.size for side in sides] for i in index])
    contact = along.max(axis=1)
    # How far each piece reaches in from each side, as a share of the picture.
    depth = np.stack(
        [
            boxes[:, 1] / height,
            (height - boxes[:, 0]) / height,
            boxes[:, 3] / width,
            (width - boxes[:, 2]) / width,
        ],
        axis=1,
    )
    # A band along the picture's edge (a paper edge, the table, a shadow's rim): it runs
    # along nearly all of one side and stays near it. A digit in a tight crop may run
    # along a side too, but reaches across the picture.
    edge_band = np.any((along > EDGE_ALONG) & (depth < EDGE_BAND), axis=1)
    if edge_band.all():
        return np.zeros_like(mask)
    areas = np.where(edge_band, 0, areas)
    extent = np.maximum(boxes[:, 1] - boxes[:, 0], boxes[:, 3] - boxes[:, 2])
    digit_like = (contact == 0) & (extent >= 0.25 * min(height, width))
    # An underline drawn with a firmer pen than the digit outweighs it: never the main
    # piece. Nor is a circle drawn round the digit. Both are looked for among the pieces
    # big enough to be writing: a noisy picture has thousands of specks.
    sizable = np.flatnonzero(extent >= max(MIN_DIGIT, 0.03 * min(height, width)))
    lines_under = underlines(boxes[sizable])  # [k, j]: sizable[k] underlines sizable[j]
    if faint is not None and lines_under.any():
        joined, _ = ndimage.label(faint | mask, structure=np.ones((3, 3), bool))
        stroke = np.asarray(ndimage.maximum(joined, labels, index[sizable]))
        lines_under &= stroke[:, None] != stroke[None, :]  # one stroke, broken by the threshold
    around = np.zeros(count, bool)
    around[sizable] = rings(boxes[sizable], lambda k: labels[slices[sizable[k]]] == sizable[k] + 1)
    underlining = np.zeros(count, bool)
    underlining[sizable] = lines_under.any(axis=1)
    choice = np.where(underlining | around, 0, areas)
    main = int(np.argmax(choice))
    # What the picture's edge cuts this much is not the digit's: half a side, or on a page
    # any of it that lies clear of the digit (a pen lying there, running out of the
    # picture). A tight crop may pass for a page when its ink misses an edge, and a
    # threshold may break its digit into pieces that touch the edge close to the rest (a
    # 5's bar drawn apart, a 7's stem).
    cut = np.full(count, 0.5)
    if page and contact[main] > 0 and digit_like.any():
        cut[(contact > 0) & clear_of(labels, index[digit_like])] = 0.0
    if contact[main] > cut[main] and digit_like.any():
        candidates = np.flatnonzero(digit_like)
        main = candidates[np.argmax(choice[candidates])]
    if page and contact[main] == 0 and contact.any():
        cut = np.where((contact > 0) & clear_of(labels, [main + 1]), 0.0, 0.5)
    top, bottom, left, right = boxes[main]
    margin_y = margin_x = max(bottom - top, right - left)  # the digit's own scale
    centre_y = (boxes[:, 0] + boxes[:, 1]) / 2
    centre_x = (boxes[:, 2] + boxes[:, 3]) / 2
    near = (
        (centre_y >= top - margin_y)
        & (centre_y <= bottom + margin_y)
        & (centre_x >= left - margin_x)
        & (centre_x <= right + margin_x)
    )
    if extent[main] < max(MIN_DIGIT, 0.03 * min(height, width)):
        return np.zeros_like(mask)  # a speck, a fibre, a noise pixel: nothing written
    keep = near & (areas >= max(4.0, 0.08 * areas[main]))
    if contact[main] == 0:  # the digit stands clear: what the picture's edge cuts is not it
        keep &= contact <= cut
    keep[main] = True
    # A form's comb under the digit (a baseline with a tick at each end) is no part of it:
    # a flat cup, as wide as the digit at least, reaching lower than the digit, in the
    # lower half of it or below. (A digit's own flat stroke, drawn apart, is no cup.)
    widths = boxes[:, 3] - boxes[:, 2]
    under = (boxes[:, 0] >= (top + bottom) / 2) & (boxes[:, 1] >= bottom) & (widths >= right - left)
    under_main = np.zeros(count, bool)  # the lines under the main piece
    if main in sizable:
        under_main[sizable] = lines_under[:, np.searchsorted(sizable, main)]
    keep &= ~under_main & ~around
    for k in np.flatnonzero(under & keep):
        if is_form_comb(labels[boxes[k, 0] : boxes[k, 1], boxes[k, 2] : boxes[k, 3]] == k + 1):
            keep[k] = False
    # Writing stands out from the marks around it; grain and dust do not.
    elsewhere = ~keep & ~edge_band & ~under_main & ~around
    # ... but a digit clear of the picture's edge is not weighed against what the edge cuts
    # clear of it (the end of a pen lying there, split into bits by its light).
    rivals = elsewhere & (cut > 0) if contact[main] == 0 else elsewhere
    grain = areas[rivals].max(initial=0)
    if np.count_nonzero(elsewhere) >= CLUTTER_PIECES and areas[main] < CLUTTER_RATIO * grain:
        return np.zeros_like(mask)
    kept = np.isin(labels, index[keep])
    if not around.any():  # a circle the digit touches is one piece with it
        box = (slice(top, bottom), slice(left, right))
        band = ring_band(labels[box] == main + 1)
        if band is not None:
            kept[box] &= ~band
    return kept


def clear_of(labels: np.ndarray, pieces) -> np.ndarray:
    """For each labelled piece: does it lie EDGE_CLEAR stroke widths or more from all of
    ``pieces`` (labels)?"""
    ink = np.isin(labels, pieces)
    apart = ndimage.distance_transform_edt(~ink) >= EDGE_CLEAR * stroke_width(ink)
    return np.asarray(ndimage.minimum(apart, labels, np.arange(1, labels.max() + 1)), bool)


def ring_band(piece: np.ndarray) -> np.ndarray | None:
    """The circle of a circled digit that touches it, as one piece with it (cropped to its
    box): its outline, RING_BAND stroke widths deep, when the piece filled in is about as
    much of its box as an ellipse (RING_FILL), mostly paper (RING_HOLLOW), and ink lies
    deeper inside, at least RING_DIGIT of the piece's height and not one straight bar (a
    slashed zero); else None. The strokes of a digit alone lie near its outline once its
    loops are filled; a scribble's outline is no ellipse; a bold 8 is mostly ink."""
    filled = ndimage.binary_fill_holes(piece)
    if not RING_FILL[0] <= filled.mean() <= RING_FILL[1]:
        return None  # no ellipse (which fills pi/4 of its box): a scribble, a box, a digit
    if filled.sum() < RING_HOLLOW * piece.sum():
        return None  # mostly ink: a bold digit's loops, not paper inside a circle
    holes = filled & ~piece
    if not holes.any() or np.ptp(np.flatnonzero(holes.any(axis=1))) + 1 < RING_INNER * len(piece):
        return None  # nothing enclosed as tall as a digit inside
    depth = ndimage.distance_transform_edt(np.pad(filled, 1))[1:-1, 1:-1]
    band = depth <= RING_BAND * stroke_width(piece)
    labels, count = ndimage.label(piece & ~band, structure=np.ones((3, 3), bool))
    if count == 0:
        return None
    # The digit inside is one stroke at least RING_DIGIT of the piece's height: not the
    # few pixels a wobbly outline leaves past the band, nor a bold 0's second inner stroke.
    heights = [box[0].stop - box[0].start for box in ndimage.find_objects(labels)]
    if max(heights) < RING_DIGIT * piece.shape[0]:
        return None
    rows, cols = np.nonzero(labels == int(np.argmax(heights)) + 1)
    if rows.size < 3:
        return None
    spread = np.linalg.eigvalsh(np.cov(np.stack([rows, cols]).astype(np.float64)))
    if spread[1] > RING_BAR**2 * max(spread[0], 1e-9):
        return None  # a bar: the slash through a zero, or a 1 (left as it was)
    return piece & band


def rings(boxes: np.ndarray, piece: Callable[[int], np.ndarray]) -> np.ndarray:
    """Which pieces are a ring drawn around another: a circled digit's circle. A ring
    holds a piece at least RING_INNER of its height inside its box, and surrounds it:
    seen from that piece's centre, its ink lies in RING_AROUND of all directions (a hand
    drawn circle may be left a little open). A 0's dot or a 6's loop holds no such piece.
    ``boxes``: top, bottom, left, right; ``piece(k)``: piece k's mask within its box."""
    top, bottom, left, right = boxes.T
    heights = bottom - top
    inside = (
        (top[None, :] > top[:, None])
        & (bottom[None, :] < bottom[:, None])
        & (left[None, :] > left[:, None])
        & (right[None, :] < right[:, None])
        & (heights[None, :] >= RING_INNER * heights[:, None])
    )
    found = np.zeros(len(boxes), bool)
    for k, j in np.argwhere(inside):
        if found[k]:
            continue
        rows, cols = np.nonzero(piece(k))
        centre_y = (top[j] + bottom[j]) / 2 - top[k]
        centre_x = (left[j] + right[j]) / 2 - left[k]
        angles = np.arctan2(rows - centre_y, cols - centre_x)
        bins = np.unique(((angles + np.pi) / (2 * np.pi) * RING_BINS).astype(int) % RING_BINS)
        found[k] = len(bins) >= RING_AROUND * RING_BINS
    return found


def underlines(boxes: np.ndarray) -> np.ndarray:
    """``[k, j]``: piece k underlines piece j (boxes: top, bottom, left, right): a bar
    (UNDERLINE_FLAT flat) at least as wide as j, under it, and wholly below it, clear of
    it by UNDER_GAP of j's height. The base of a 2 drawn apart starts where the 2's other
    stroke ends, so it is not clear of it, and it is no wider. The foot of a 1 drawn apart
    is both, so nothing under a narrow piece (UNDER_NARROW of its height) is an underline:
    a 1 reads as a 1 with or without the bar under it."""
    top, bottom, left, right = boxes.T
    heights, widths = bottom - top, right - left
    below = top[:, None] >= bottom[None, :] + UNDER_GAP * heights[None, :]
    under = np.minimum(right[:, None], right[None, :]) > np.maximum(left[:, None], left[None, :])
    bar = widths >= UNDERLINE_FLAT * heights
    digit = ~bar & (widths >= UNDER_NARROW * heights)
    return bar[:, None] & digit[None, :] & below & under & (widths[:, None] >= widths[None, :])


def is_form_comb(piece: np.ndarray) -> bool:
    """Whether a piece (cropped to its box) is a form's comb, as flat as one (UNDER_FLAT
    times as wide as high): under a digit, or printed alone on a form."""
    return piece.shape[1] >= UNDER_FLAT * piece.shape[0] and is_comb(piece)


def is_comb(piece: np.ndarray) -> bool:
    """Whether a flat piece (cropped to its box) is a form's comb: a line along its bottom
    with a tick up at each end, and nothing above the line in between."""
    height, width = piece.shape
    end = max(1, width // 10)
    rows = np.arange(height)[:, None]
    reach = np.where(piece, rows, height).min(axis=0)  # the highest ink in each column
    ticks = reach[:end].min() <= 0.3 * height and reach[-end:].min() <= 0.3 * height
    middle = reach[end:-end]
    return bool(ticks and middle.size and middle.min() >= 0.6 * height)


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels: twice the mean distance to paper along the
    stroke's ridge (the local maxima of the distance transform)."""
    if not mask.any():
        return 0.0
    # Only the ink's box and the ring of paper around it matter: same distances, less work.
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    mask = mask[max(0, rows[0] - 1) : rows[-1] + 2, max(0, cols[0] - 1) : cols[-1] + 2]
    distance = ndimage.distance_transform_edt(mask)
    ridge = (distance == ndimage.maximum_filter(distance, size=3)) & mask
    return float(2 * distance[ridge].mean() - 1) if ridge.any() else 1.0


def thicken(ink: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Widen thin strokes (a 1-pixel mouse line, a fine pen) to MNIST's relative width."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return ink, mask
    extent = max(np.ptp(rows), np.ptp(cols)) + 1
    missing = TARGET_STROKE * extent - stroke_width(mask)
    steps = int(missing // 2)
    if steps < 1:
        return ink, mask
    grown = ndimage.binary_dilation(mask, iterations=steps)
    strength = ndimage.grey_dilation(np.where(mask, ink, 0), size=(2 * steps + 1,) * 2)
    return np.where(grown, np.maximum(ink, strength), ink), grown


def centre_in_box(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Crop to the mask, fit into BOX x BOX keeping the aspect ratio, and place in
    SIZE x SIZE with the centre of mass at the centre. Returns ``uint8``."""
    if not mask.any():
        return np.zeros((SIZE, SIZE), np.uint8)
    rows, cols = np.nonzero(mask)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    # Keep the soft, anti-aliased edge just outside the mask, as MNIST's scans have it.
    near = ndimage.binary_dilation(mask, iterations=2)
    digit = np.where(near, ink, 0)[top:bottom, left:right]
    # MNIST strokes are saturated: full ink is the typical strength of this stroke.
    strength = np.percentile(digit[mask[top:bottom, left:right]], 75)
    digit = np.clip(digit / max(strength, 1e-3), 0, 1)
    height, width = digit.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = np.asarray(
        Image.fromarray(digit.astype(np.float32), mode="F").resize(
            size, Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
        )
    )
    canvas = np.zeros((SIZE, SIZE), np.float32)
    top, left = (SIZE - size[1]) // 2, (SIZE - size[0]) // 2
    canvas[top : top + size[1], left : left + size[0]] = small
    if canvas.sum() > 0:
        cy, cx = ndimage.center_of_mass(canvas)
        canvas = ndimage.shift(
            canvas, (SIZE / 2 - 0.5 - cy, SIZE / 2 - 0.5 - cx), order=1, mode="constant"
        )
    return np.clip(np.rint(canvas * 255), 0, 255).astype(np.uint8)


@dataclass
class Stages:
    """Every intermediate of the pipeline, for ``--explain`` and for tests."""

    grey: np.ndarray
    ink: np.ndarray
    mask: np.ndarray
    cleaned: np.ndarray
    thick: np.ndarray
    output: np.ndarray
    ink_dark: bool  # the polarity this reading took
    unsure: bool = False  # the other polarity is plausible too (``polarity_unsure``)
    width: float = 1.0  # the share of its width the picture was narrowed to (``narrow``)
    # A page with writing on it, not a tight crop (the first reading's ink does not reach
    # all four edges): only then are pieces that are not darker than their surroundings
    # dropped (``drop_shading``).
    page: bool = True

    @property
    def blank(self) -> bool:
        return not self.cleaned.any()

    @property
    def fills(self) -> bool:
        """Read at full width, the ink fills the picture: read it narrowed too."""
        return self.width == 1 and fills_frame(self.cleaned)


def normalize_stages(image: np.ndarray, ink_dark: bool | None = None, width: float = 1.0) -> Stages:
    """Every stage for one picture; ``ink_dark`` forces the polarity (None: decide, and
    say in ``unsure`` whether the other one should be read too); ``width`` < 1 reads the
    picture narrowed to that share of its width (``narrow``)."""
    image = np.asarray(image)
    grey = working_size(to_grey(shrink(image, working_scale(image.shape))))
    if ink_dark is None:
        grey, dark = on_sheet(grey, ink_is_dark(grey))
    else:
        dark = bool(ink_dark)
    unsure = ink_dark is None and polarity_unsure(grey, dark)
    return _stages(grey, dark, width, unsure)


def reread(stages: Stages, ink_dark: bool | None = None, width: float = 1.0) -> Stages:
    """The picture of full-width ``stages`` read again, with the other polarity or
    narrowed, from its working grey: a big photo is not made grey again. Whether it is
    a page (``Stages.page``) was settled by the first reading."""
    if stages.width != 1:
        raise ValueError("only a full-width reading can be read again")
    dark = stages.ink_dark if ink_dark is None else bool(ink_dark)
    return _stages(stages.grey, dark, width, page=stages.page)


def _stages(
    grey: np.ndarray, dark: bool, width: float, unsure: bool = False, page: bool | None = None
) -> Stages:
    if width < 1:
        grey = narrow(grey, width, dark)
    ink, mask, lined = _ink(grey, dark)
    if page is None:  # a tight crop's ink reaches every edge, in one polarity or the other
        page = not reaches_every_edge(lined)
        if page and unsure:
            page = not reaches_every_edge(_ink(grey, not dark)[2])
    if page:
        lined = drop_objects(drop_page_shade(lined, grey if dark else 1.0 - grey))
    cleaned = keep_digit_components(lined, ink > MIN_INK, page)
    thick_ink, thick = thicken(ink, cleaned)
    output = centre_in_box(thick_ink, thick)
    return Stages(grey, ink, mask, cleaned, thick, output, dark, unsure, width, page)


def _ink(grey: np.ndarray, dark: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ink map, its mask, and the mask without ruled lines."""
    ink = ink_map(grey, dark)
    mask = ink_mask(ink)
    return ink, mask, drop_frames(remove_ruled_lines(mask))


def normalize(image: np.ndarray) -> np.ndarray:
    """Any picture of one digit (``uint8`` grey or RGB) -> MNIST-like ``uint8`` 28x28."""
    return normalize_stages(image).output
