"""From a picture of a number written in a row to one MNIST-like 28x28 input per digit.

A year, a meter reading or a form field holds several digits, so ``pipeline.normalize``
(which keeps one digit) cannot read it. This module finds the digits first, then sends
each through the same last stages as a single digit:

    grey -> working size -> ink map -> mask -> ruled lines, bands made by mirroring
    the picture at its edges, shading, a pen lying beside the number -> pieces
    (connected components) -> drop specks and paper edges -> merge pieces of one digit
    -> drop groups no bigger than the grain -> split touching digits (a loop cut through
    stays whole with one side) -> per digit: stroke thickness, fit 20x20, centre of mass

Pure array functions: no model, no I/O. Boxes are in the original picture's pixels.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from digitrec import pipeline as P

SPECK = 0.2  # a piece whose longer side is below this fraction of the digit height
SHORT = 0.4  # a group this much shorter than the digits is punctuation or a dash
OFF_ROW = 0.5  # a group in the row lies this much in it (``find_row``, ``drop_off_row``)
# No digit stands this many times as tall as the others in its row; one the picture's
# edge cuts, EDGE_TOWER (a pen standing in the row, cut by the edge).
TOWER, EDGE_TOWER = 2.0, 1.5
# A thin bar (no wider than THIN_BAR x the row's height) lying more than FLAT_BAR degrees
# from upright is no 1 (a written 1 leans up to about 45 degrees).
THIN_BAR, FLAT_BAR = 0.5, 60.0
ROW_SLOPE = 0.5  # a row slopes by at most this much (rise over run)
ROW_CANDIDATES = 24  # the row is looked for through the first this many groups
TALL = 0.75  # a piece at least this tall is a digit of its own, never part of another
MERGE = 0.5  # pieces whose x-extents overlap by half the narrower one's width are one digit
WIDE = 1.1  # a group wider than this many digit heights holds touching digits
DIGIT_WIDTH = (0.55, 0.75, 0.9)  # typical digit width / height: lowest, default, highest
READ_WIDER = 0.8  # with a scorer, groups wider than this (x digit height) are cut by reading
# and so are groups wider than DOUBT_WIDER whose whole reads with a score below DOUBT: two
# narrow digits run together (a 1 in a 6) can be narrower than one wide digit
DOUBT_WIDER, DOUBT = 0.45, math.log(0.9)
MAX_WIDTH = 1.5  # no single digit is wider than this (x digit height)
GRID = 0.1  # also a cut candidate every GRID digit heights: junctions off the minima
EDGE = 0.08  # no cut closer than this (x digit height) to a group's edge
LOOSE = 0.15  # a bit on the cut smaller than this share of the piece's largest is a neighbour's
LOW_PIECE, LOW_COST = 0.6, 3.0  # a cut piece lower than this (x digit height) costs this much
BOX_TICK = 0.7  # an upright bar off a form's line, shorter than this x digit height: a tick
# An upright bar is ruler-straight: the middle of its ink, row by row, stays within
# BAR_DRIFT pixels over its whole length. (Not its fill of its box, as before: a box's
# side fills about 0.7 of it once a turned form is levelled, which frays its lines, and a
# written 1 as thin as thick lines fills about as much.)
BAR_DRIFT = 1.5
# Ink fainter than FAINT (a group's median) is writing only if its strokes are at least
# HAIR pixels wide (at the row's working size) but no wider than BLOB of its height, and
# sharp-edged: the ring a stroke width beyond them holds less than FADE of their ink.
# Otherwise it is the paper: the largest fibres of a blank textured page (hairlines),
# smudges on a chalkboard (blobs), or shading and grain on photographed paper (fading into
# what surrounds them). Pencil digits measure 0.15, but 2.5 px and more, at most 0.36 of
# their height, and at most 0.1 in the ring; small digits in a large photo 1.3 px, but
# ink 0.7; blurred digits up to 0.33 in the ring, but ink 0.3. Smudges: 1.07-1.2.
HAIR, FAINT, FADE, BLOB = 1.5, 0.25, 0.25, 0.7
LOOP = 0.02  # a hole at least this big (x digit height squared) is a loop: a 0, 6, 8, 9 ...
RING = 1.5  # a loop's ink: within this many times the usual stroke half-width of its hole
# A form or a ruled page photographed turned by up to TURN degrees is levelled first, so
# its lines lie along one row of pixels, as their removal needs: angles tried TURN_STEP
# apart, then TURN_FINE apart around the best. (Made-up forms of MNIST training digits,
# 20 each: turned 0.5-4.5 degrees, 18-19 read right of 19 level; 8 degrees, 15; 10, 10-15.)
TURN, TURN_STEP, TURN_FINE = 10.0, 0.25, 0.05

# Model inputs (n, 28, 28) -> how well each reads as one digit (higher is better).
Scorer = Callable[[np.ndarray], Sequence[float]]


@dataclass(frozen=True)
class DigitImage:
    """One digit found in a picture: where it is and what the model should see."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the original picture's pixels
    model_input: np.ndarray  # uint8 (28, 28), MNIST-like


@dataclass
class Piece:
    """A piece of writing: its bounding box in the working picture and its mask there."""

    top: int
    left: int
    mask: np.ndarray  # bool, the bounding box's size

    @property
    def height(self) -> int:
        return self.mask.shape[0]

    @property
    def width(self) -> int:
        return self.mask.shape[1]

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def right(self) -> int:
        return self.left + self.width

    def union(self, other: Piece) -> Piece:
        top, left = min(self.top, other.top), min(self.left, other.left)
        bottom, right = max(self.bottom, other.bottom), max(self.right, other.right)
        mask = np.zeros((bottom - top, right - left), bool)
        for piece in (self, other):
            rows = slice(piece.top - top, piece.bottom - top)
            mask[rows, piece.left - left : piece.right - left] |= piece.mask
        return Piece(top, left, mask)


def segment(image: np.ndarray, score: Scorer | None = None) -> list[DigitImage]:
    """The digits of a number written in a row, left to right; [] when there is no ink.

    Touching digits are cut by their width alone, or, given ``score`` (model inputs
    ``(n, 28, 28)`` -> how well each reads as one digit, higher is better), where the
    pieces read best.

    >>> [d.box for d in segment(load_image("year.png"))]
    [(12, 8, 60, 90), (70, 10, 118, 92), (126, 9, 171, 90), (180, 8, 230, 93)]
    """
    image = np.asarray(image)
    ink, groups, height, turn = _groups(image)
    width = typical_width(groups, height)
    if score is None:
        digits = [piece for group in groups for piece in split_wide(group, height, width)]
    else:
        digits = split_by_reading(ink, groups, height, width, score)
    return _digit_images(image, ink, digits, turn)


def digits_apart(image: np.ndarray) -> list[DigitImage]:
    """The digits of a number whose digits stand apart, left to right; [] unless the
    picture holds at least two groups and none of them is wide enough to hold touching
    digits. Cautious on purpose, for telling a number from one digit (``predict``): a
    letter or a scribble is one group, or is cut into strokes that pass for 1s."""
    image = np.asarray(image)
    ink, groups, height, turn = _groups(image)
    if len(groups) < 2 or any(group.width > WIDE * height for group in groups):
        return []
    return _digit_images(image, ink, groups, turn)


@dataclass(frozen=True)
class Turn:
    """How the working picture was levelled: turned by ``angle`` degrees (``level``),
    from ``before`` to ``after`` (height, width)."""

    angle: float
    before: tuple[int, int]
    after: tuple[int, int]

    def back(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points of the levelled picture -> the same points before it was turned."""
        theta = math.radians(self.angle)
        (yb, xb), (ya, xa) = ((np.asarray(s) - 1) / 2 for s in (self.before, self.after))
        x, y = np.asarray(x, float) - xa, np.asarray(y, float) - ya
        return (
            math.cos(theta) * x - math.sin(theta) * y + xb,
            math.sin(theta) * x + math.cos(theta) * y + yb,
        )


def _groups(image: np.ndarray) -> tuple[np.ndarray, list[Piece], float, Turn | None]:
    """The picture's ink map at the row working size (levelled, if its lines are turned),
    its groups, the digit height, and how it was levelled."""
    work = row_working_size(P.to_grey(P.shrink(image, row_scale(image.shape))))
    work, dark = P.on_sheet(work, P.ink_is_dark(work))  # a note lying on a table
    ink = P.ink_map(work, dark)
    turn = None
    angle = line_angle(P.ink_mask(ink))
    if angle:
        levelled = level(work, angle)
        turn = Turn(angle, work.shape, levelled.shape)
        work, ink = levelled, P.ink_map(levelled, dark)
    groups, height = find_groups(
        ink, P.ink_map(work, dark, extend=True), work if dark else 1.0 - work
    )
    if turn is not None:
        # The corners the turn adds repeat the picture's edges (which carries its lines on
        # to their removal): what lies mostly there is a streak, not writing.
        inside = ndimage.rotate(np.ones(turn.before), angle, reshape=True, order=1) > 0.99
        groups = [g for g in groups if _share_inside(g, inside) >= 0.5]
    return ink, groups, height, turn


def _share_inside(piece: Piece, inside: np.ndarray) -> float:
    region = inside[piece.top : piece.bottom, piece.left : piece.right]
    return float(region[piece.mask].mean()) if piece.mask.any() else 0.0


def line_angle(mask: np.ndarray) -> float:
    """How many degrees the picture's long lines (a form's, a ruled page's) are turned
    from level, up to TURN: 0.0 when they lie level already or there are none.

    At each angle the ink is sheared so that a line at that angle lies along one row, and
    the columns that row crosses are counted. A line needs LINE_SPAN of the width; a row
    of digits crosses much less. Several angles fit a thick line about as well: the middle
    one is taken."""
    rows, cols = np.nonzero(mask)
    width = mask.shape[1]
    if np.count_nonzero(mask.any(axis=0)) < P.LINE_SPAN * width:
        return 0.0  # no line: too few columns have ink at all

    def crossed(angle: float) -> int:
        shifted = rows - np.rint(cols * math.tan(math.radians(angle))).astype(int)
        shifted -= shifted.min()
        hit = np.zeros((shifted.max() + 1, width), bool)
        hit[shifted, cols] = True
        return int(hit.sum(axis=1).max())

    if crossed(0.0) >= P.LINE_SPAN * width:
        return 0.0
    coarse = np.arange(-TURN, TURN + TURN_STEP / 2, TURN_STEP)
    best = coarse[int(np.argmax([crossed(a) for a in coarse]))]
    fine = np.arange(best - 2 * TURN_STEP, best + 2 * TURN_STEP + TURN_FINE / 2, TURN_FINE)
    counts = np.array([crossed(a) for a in fine])
    if counts.max() < P.LINE_SPAN * width:
        return 0.0
    return round(float(fine[counts >= counts.max() - 0.01 * width].mean()), 3)


def level(grey: np.ndarray, angle: float) -> np.ndarray:
    """The picture turned by ``angle`` degrees so that lines at that angle lie level,
    grown to keep every pixel; the new corners repeat the nearest edge, not a flat fill
    whose border would read as ink."""
    return ndimage.rotate(grey, angle, reshape=True, order=1, mode="nearest")


def _digit_images(
    image: np.ndarray, ink: np.ndarray, digits: list[Piece], turn: Turn | None = None
) -> list[DigitImage]:
    """Each piece's box in the original picture and its model input, left to right."""
    digits = sorted(digits, key=lambda piece: piece.left + piece.right)
    shape = image.shape[:2]
    work = turn.before if turn else ink.shape
    scale_y, scale_x = shape[0] / work[0], shape[1] / work[1]
    return [
        DigitImage(_original_box(piece, scale_x, scale_y, shape, turn), digit_input(ink, piece))
        for piece in digits
    ]


def find_groups(
    ink: np.ndarray, extended: np.ndarray | None = None, paper_bright: np.ndarray | None = None
) -> tuple[list[Piece], float]:
    """The writing's groups (one digit each, or touching digits) and the digit height.
    ``extended``: the ink map of the picture carried past its edges by repeating them
    (``drop_mirrored``); ``paper_bright``: the picture with paper bright, for dropping
    shading and the world beyond a page, as the pipeline does (``P.drop_page_shade``)."""
    raw = P.ink_mask(ink)
    mask = remove_lines(raw)
    mask = P.drop_frames(drop_box_edges(mask, raw & ~mask))
    if extended is not None:
        mask = drop_mirrored(mask, ink, extended)
    if paper_bright is not None and not P.reaches_every_edge(mask):
        mask = P.drop_objects(P.drop_page_shade(mask, paper_bright))
    pieces = drop_circles(drop_border_runners(components(mask), mask.shape))
    if not pieces:
        return [], 0.0
    height = digit_height(pieces)
    marks = [b for b in pieces if max(b.height, b.width) < SPECK * height]
    pieces = [b for b in pieces if max(b.height, b.width) >= SPECK * height]
    groups = merge_pieces(pieces, height)
    height = digit_height(groups)  # again: a ruled line may have cut every digit in two
    # As in the pipeline, marks too small to be writing (dust, a fibre) are no digits. A digit
    # is about as tall as wide or taller: a sliver a pixel or two tall (what is left of a
    # table's edge along the row) is none, however long.
    smallest = max(P.MIN_DIGIT, 0.03 * min(ink.shape))
    kept = []
    for group in groups:
        digit_sized = group.height >= max(SHORT * height, smallest)
        (kept if digit_sized and not _paper(group, ink, mask) else marks).append(group)
    kept = drop_off_row(kept, ink.shape)
    # Writing stands out from the grain and dust around it, as in the pipeline
    # (``P.CLUTTER_*``): among many marks, a group no bigger than CLUTTER_RATIO times the
    # largest of them is more of the same. On a blank textured page, that is every group.
    if len(marks) >= P.CLUTTER_PIECES:
        grain = P.CLUTTER_RATIO * max(int(m.mask.sum()) for m in marks)
        kept = [g for g in kept if g.mask.sum() >= grain]
    return kept, height


def drop_off_row(groups: list[Piece], shape: tuple[int, int]) -> list[Piece]:
    """Drop what is no digit of the row the writing stands in (a pen or a pencil lying
    beside the number; ``find_row``):

    - what the picture's edge cuts that spans less than OFF_ROW of the row's height, or of
      its own, within the row (the end of a pen running out of the picture above or
      below). A number cropped tight touches the edge, but its digits stand in the row;
    - what lies wholly above or below the row, when the row holds more groups than lie
      off it (two rows of digits stay as they are);
    - what stands TOWER times as tall as the row's digits (EDGE_TOWER, cut by the edge);
    - a thin, solid bar (``P.PEN_ASPECT`` times as long as wide, filling ``P.PEN_FILL`` of
      its rectangle, no wider than THIN_BAR of the row's height) lying flatter than any 1
      (more than FLAT_BAR degrees from upright).

    None of the last three goes when the row holds nothing else: then it is the writing."""
    found = find_row(groups, shape)
    if found is None:
        return groups
    slope, middle, cut, members = found
    talls = [_row_height(groups, members, k) for k in range(len(groups))]
    overlaps = [_overlap(g, slope, middle, t) for g, t in zip(groups, talls, strict=True)]
    off = [k for k, c in enumerate(cut) if not c and overlaps[k] <= 0]
    kept = []
    for k, (g, tall, overlap) in enumerate(zip(groups, talls, overlaps, strict=True)):
        if members == [k]:
            kept.append(g)  # the row holds nothing else: it is the writing
            continue
        if cut[k] and overlap < OFF_ROW * min(g.height, tall):
            continue
        if k in off and len(members) > len(off):
            continue
        if g.height >= (EDGE_TOWER if cut[k] else TOWER) * tall:
            continue
        length, width, fill, angle = P.bar_shape(g.mask)
        bar = length >= P.PEN_ASPECT * width and fill >= P.PEN_FILL and width <= THIN_BAR * tall
        if bar and abs(angle - 90) > FLAT_BAR:
            continue
        kept.append(g)
    return kept


def find_row(groups: list[Piece], shape: tuple[int, int]):
    """The row the writing stands in: the straight line (a row may slope, by up to
    ROW_SLOPE) through the centres of two groups clear of the picture's edge, or level
    through one, that the most groups stand in (OFF_ROW of their height or of the row's),
    fitted again through those. Returns (slope, middle, cut, members): the line
    ``y = middle + slope * x``, which groups the edge cuts, and the groups in the row; None
    for one group, or when the edge cuts every group (a number cropped tight)."""
    cut = [edge_contact(g, shape) > 0 for g in groups]
    inside = [k for k, c in enumerate(cut) if not c]
    if not inside or len(groups) < 2:
        return None
    xs = np.array([(g.left + g.right) / 2 for g in groups])
    ys = np.array([(g.top + g.bottom) / 2 for g in groups])
    tall = float(np.median([groups[k].height for k in inside]))
    best, best_score = None, None
    for a, b in itertools.combinations_with_replacement(inside[:ROW_CANDIDATES], 2):
        if a != b and xs[b] == xs[a]:
            continue
        slope = 0.0 if a == b else (ys[b] - ys[a]) / (xs[b] - xs[a])
        if abs(slope) > ROW_SLOPE:
            continue
        middle = ys[a] - slope * xs[a]
        members = [
            k
            for k, g in enumerate(groups)
            if _overlap(g, slope, middle, tall) >= OFF_ROW * min(g.height, tall)
        ]
        score = (len(members), -abs(slope))
        if best_score is None or score > best_score:
            best, best_score = members, score
    members = [k for k in best if not cut[k]] or best
    if len(members) > 1 and np.ptp(xs[members]) > 0:
        slope = float(np.polyfit(xs[members], ys[members], 1)[0])
    else:
        slope = 0.0
    middle = float(np.median(ys[members] - slope * xs[members]))
    return slope, middle, cut, members


def _row_height(groups: list[Piece], members: list[int], k: int) -> float:
    """The row's height, as measured without group ``k``."""
    others = [groups[j].height for j in members if j != k] or [groups[k].height]
    return float(np.median(others))


def _overlap(g: Piece, slope: float, middle: float, tall: float) -> float:
    """How many of ``g``'s rows lie in the row ``y = middle + slope * x``, ``tall`` high."""
    centre = middle + slope * (g.left + g.right) / 2
    return min(g.bottom, centre + tall / 2) - max(g.top, centre - tall / 2)


def _paper(group: Piece, ink: np.ndarray, mask: np.ndarray) -> bool:
    """Faint ink that is the paper, not writing (FAINT, HAIR, BLOB, FADE): a fibre, a
    smudge, or shading and grain that fade into what surrounds them. A written stroke's
    edge is sharp, even blurred: a stroke width beyond it, the ink map is near paper."""
    strength = float(np.median(ink[group.top : group.bottom, group.left : group.right][group.mask]))
    if strength >= FAINT:
        return False
    width = P.stroke_width(group.mask)
    if width < HAIR or width > BLOB * group.height:
        return True
    reach = max(2.0, width)
    pad = int(reach) + 3
    top, left = max(0, group.top - pad), max(0, group.left - pad)
    bottom, right = min(ink.shape[0], group.bottom + pad), min(ink.shape[1], group.right + pad)
    own = np.zeros((bottom - top, right - left), bool)
    own[group.top - top : group.bottom - top, group.left - left : group.right - left] = group.mask
    near = ndimage.distance_transform_edt(~own)
    ring = (near > 1.5) & (near <= reach + 1.5) & ~mask[top:bottom, left:right]
    return bool(ring.any()) and float(ink[top:bottom, left:right][ring].mean()) >= FADE * strength


def drop_mirrored(mask: np.ndarray, ink: np.ndarray, extended: np.ndarray) -> np.ndarray:
    """Drop the pieces of ``mask`` that are ink only because the paper estimate mirrors
    the picture at its edges: keep those with at least half their ink in ``extended``,
    the ink map of the picture carried past its edges by repeating them.

    A row is short, so the paper estimate's window is small: a shadow or the table along
    an edge, mirrored past it, becomes a band the window spans, read as a string of 1s.
    Repeated past the edge, it is paper. A stroke that touches the edge of a tight crop
    loses its end there, repeated into a slab, but keeps its ink everywhere else."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count == 0:
        return mask
    index = np.arange(1, count + 1)
    before = ndimage.sum_labels(ink, labels, index)
    after = ndimage.sum_labels(extended, labels, index)
    return np.isin(labels, index[after >= 0.5 * before])


def row_working_size(grey: np.ndarray) -> np.ndarray:
    """``pipeline.working_size`` for a picture of one or two digits, so that a single digit
    gets exactly the model input ``predict`` gives it; a longer row is scaled by its
    shorter side instead, so that its digits keep enough pixels for morphology."""
    return P.rescale(grey, row_scale(grey.shape))


def row_scale(shape: tuple[int, ...]) -> float:
    """The scale ``row_working_size`` applies to a picture of this shape."""
    short, long = sorted(shape[:2])
    if long <= 2 * short:
        return P.working_scale(shape)
    return float(min(np.clip(short, P.MIN_SIDE, P.MAX_SIDE / 2) / short, 4 * P.MAX_SIDE / long))


def remove_lines(mask: np.ndarray) -> np.ndarray:
    """``pipeline.remove_ruled_lines``, but a straight stroke as thick as a digit's (a "1"
    as tall as the crop) stays: the pipeline judges a line's thickness against the
    picture's extent across it, which in a wide row is the width, not the digit's size."""
    cleaned = P.remove_ruled_lines(mask)
    lost = mask & ~cleaned
    if not lost.any():
        return cleaned
    height, width = mask.shape
    limit = max(2, 0.04 * min(height, width))
    for run, axis in (((max(3, int(height * 0.8)), 1), 1), ((1, max(3, int(width * 0.8))), 0)):
        lines = ndimage.binary_opening(lost, structure=np.ones(run, bool))
        labels, _ = ndimage.label(lines)
        for index, box in enumerate(ndimage.find_objects(labels), start=1):
            if box[axis].stop - box[axis].start > limit:
                cleaned |= ndimage.binary_dilation(labels == index) & lost
    return cleaned


def drop_box_edges(mask: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Drop the upright strokes of a form's boxes: digits written one to a box, or over a
    comb (a baseline with a short tick between digits). Once the long lines of the boxes
    are gone (``lines``), their sides are straight, thin, upright bars, read as 1s.

    A bar goes when it ends at a removed line at both ends (a box's side), or at one end
    if it is less than BOX_TICK of the digits' height (a comb's tick). A written 1 is
    thicker than the lines, not ruler-straight, or runs on past a line it crosses (the
    crossing was put back, so it does not end there). Where a digit's stroke crosses a
    bar, the crossing is put back too, as ``pipeline.remove_ruled_lines`` does. Not on
    squared paper: there the upright lines were removed with the rest, and what is left
    upright between them is writing."""
    if not lines.any() or lines.sum(axis=0).max() >= 0.5 * len(lines):
        return mask
    starts = np.count_nonzero(lines[0]) + np.count_nonzero(lines[1:] & ~lines[:-1])
    thickness = np.count_nonzero(lines) / starts  # the lines' mean thickness, in pixels
    thin = 2 * math.ceil(thickness) + 1  # two neighbouring boxes' sides can touch
    reach = math.ceil(thickness) + 1  # how near a bar's end must come to a line
    upright = ndimage.binary_opening(mask, structure=np.ones((max(4, 2 * reach), 1), bool))
    labels, count = ndimage.label(upright)
    if not count:
        return mask
    tall = digit_height(components(mask))
    edges = np.zeros_like(mask)
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        rows, cols = box
        height, width = rows.stop - rows.start, cols.stop - cols.start
        bar = labels[box] == index
        if width > thin or height < 3 * width or _drift(bar) > BAR_DRIFT:
            continue  # a digit's stroke, or not a straight bar
        top = _meets_line(lines, cols, rows.start - 1, -1, reach)
        bottom = _meets_line(lines, cols, rows.stop, 1, reach)
        # A tick ends in paper; the stem of a 9 that reaches the line below it runs on
        # into the 9's loop.
        past = range(rows.stop, rows.stop + reach) if top else range(rows.start - reach, rows.start)
        free = _ends_in_paper(mask, past, cols, reach)
        if (top and bottom) or ((top or bottom) and height < BOX_TICK * tall and free):
            edges[box] |= bar
    if not edges.any():
        return mask
    edges = ndimage.binary_dilation(edges) & mask
    return P.put_back_crossings(mask & ~edges, edges, thin + 2, level_lines=False)


def _drift(bar: np.ndarray) -> float:
    """The spread, in pixels, of the middle of an upright bar's ink over its rows."""
    counts = bar.sum(axis=1)
    middles = (bar * np.arange(bar.shape[1])).sum(axis=1)[counts > 0] / counts[counts > 0]
    return float(np.ptp(middles))


def _ends_in_paper(mask: np.ndarray, rows: range, cols: slice, reach: int) -> bool:
    """No ink in ``rows`` (just past a bar's end) across its columns and ``reach`` either
    side."""
    rows = range(max(0, rows.start), min(len(mask), rows.stop))
    return not mask[rows.start : rows.stop, max(0, cols.start - reach) : cols.stop + reach].any()


def _meets_line(lines: np.ndarray, cols: slice, row: int, step: int, reach: int) -> bool:
    """Going from ``row`` by ``step`` in columns ``cols``: is a removed line within
    ``reach`` rows?"""
    rows = [r for r in range(row, row + step * reach, step) if 0 <= r < len(lines)]
    return bool(lines[rows, cols].any())


def components(mask: np.ndarray) -> list[Piece]:
    """The connected pieces of the mask (8-connected, as the pipeline labels them)."""
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
    return [
        Piece(box[0].start, box[1].start, labels[box] == index)
        for index, box in enumerate(ndimage.find_objects(labels), start=1)
    ]


def drop_border_runners(pieces: list[Piece], shape: tuple[int, int]) -> list[Piece]:
    """Drop what runs along the picture's edge (a paper edge, the table), as the pipeline
    does, when some digit-sized piece stands clear of the border."""
    touching = [edge_contact(piece, shape) for piece in pieces]
    clear = any(
        c == 0 and max(b.height, b.width) >= 0.25 * min(shape)
        for b, c in zip(pieces, touching, strict=True)
    )
    return [b for b, c in zip(pieces, touching, strict=True) if not clear or c <= 0.5]


def edge_contact(piece: Piece, shape: tuple[int, int]) -> float:
    """The longest share of one side of the picture that ``piece`` lies along (0: it stands
    clear of the edge)."""
    height, width = shape
    along = [0.0]
    if piece.top == 0:
        along.append(piece.mask[0].sum() / width)
    if piece.bottom == height:
        along.append(piece.mask[-1].sum() / width)
    if piece.left == 0:
        along.append(piece.mask[:, 0].sum() / height)
    if piece.right == width:
        along.append(piece.mask[:, -1].sum() / height)
    return max(along)


def drop_circles(pieces: list[Piece]) -> list[Piece]:
    """Drop a circle drawn round the number (``P.rings``): as the tallest piece it would
    set the digit height, and the digits inside would be dropped as too short for it."""
    if len(pieces) < 2:
        return pieces
    # Only pieces as tall as a circle's digit can be a circle or inside one: not the specks.
    tallest = max(piece.height for piece in pieces)
    tall = [k for k, piece in enumerate(pieces) if piece.height >= P.RING_INNER * tallest]
    boxes = np.array(
        [(pieces[k].top, pieces[k].bottom, pieces[k].left, pieces[k].right) for k in tall]
    )
    around = P.rings(boxes, lambda i: pieces[tall[i]].mask)
    circles = {k for k, ring in zip(tall, around, strict=True) if ring}
    return [piece for k, piece in enumerate(pieces) if k not in circles]


def digit_height(pieces: list[Piece]) -> float:
    """The height of a digit in this picture: the upper quartile of the tall pieces, so
    that neither specks and detached bars nor short wide digits drag it down."""
    heights = np.array([piece.height for piece in pieces])
    return float(np.percentile(heights[heights >= 0.5 * heights.max()], 75))


def merge_pieces(pieces: list[Piece], height: float) -> list[Piece]:
    """Join the pieces of one digit (a 5's detached bar, a 4 written in two strokes, a
    digit cut in two by a ruled line): a piece joins the group its x-extent overlaps most,
    if the overlap is at least MERGE of the narrower one's width. A tall piece is a digit
    of its own, so two digits that overlap a little (slanted writing) stay apart, unless
    the two lie one above the other with a small gap (a digit cut across)."""
    groups: list[Piece] = []
    for piece in sorted(pieces, key=lambda b: b.height, reverse=True):
        best, best_overlap = None, MERGE
        for index, group in enumerate(groups):
            overlap = min(piece.right, group.right) - max(piece.left, group.left)
            overlap /= min(piece.width, group.width)
            joined = max(piece.bottom, group.bottom) - min(piece.top, group.top)
            gap = max(piece.top, group.top) - min(piece.bottom, group.bottom)
            part = piece.height < TALL * height and joined <= 1.5 * height
            stacked = 0 <= gap <= 0.25 * height
            if overlap >= best_overlap and (part or stacked):
                best, best_overlap = index, overlap
        if best is None:
            groups.append(piece)
        else:
            groups[best] = groups[best].union(piece)
    return groups


def typical_width(groups: list[Piece], height: float) -> float:
    """A digit's width here: the median width of the groups narrow enough to be one digit,
    kept within the range handwriting has (a row of 1s says little about the width of 2s)."""
    low, default, high = (ratio * height for ratio in DIGIT_WIDTH)
    single = [g.width for g in groups if g.width <= WIDE * height]
    return float(np.clip(np.median(single), low, high)) if single else default


def digit_count(width: int, height: float, digit_width: float) -> int:
    """How many touching digits a group of this width holds."""
    if width <= WIDE * height:
        return 1
    return max(2, round(width / digit_width))


def split_wide(group: Piece, height: float, digit_width: float) -> list[Piece]:
    """Cut a group of touching digits into ``digit_count`` pieces along the cheapest
    top-to-bottom paths near the evenly spaced positions (a drop-fall style cut that can
    bend around strokes instead of cutting through them)."""
    count = digit_count(group.width, height, digit_width)
    if count == 1:
        return [group]
    step = group.width / count
    half = max(1, int(0.35 * step))
    owner = np.zeros(group.mask.shape, np.int32)
    columns = np.arange(group.width)
    for k in range(1, count):
        ideal = round(k * step)
        path = cut_path(group.mask, max(0, ideal - half), min(group.width, ideal + half + 1), ideal)
        owner += columns[None, :] >= path[:, None]
    pieces = []
    for k in range(count):
        mask = group.mask & (owner == k)
        if mask.sum() < 0.02 * height**2:  # a sliver left by the cut, not a digit
            continue
        rows, cols = np.nonzero(mask)
        box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
        pieces.append(Piece(group.top + rows.min(), group.left + cols.min(), mask[box]))
    return pieces or [group]


def cut_path(mask: np.ndarray, low: int, high: int, ideal: int) -> np.ndarray:
    """The column of the cut in each row: the path from top to bottom within columns
    [low, high) that crosses the least ink, moving at most one column per row, with a
    mild pull towards ``ideal`` so that on blank paper it stays where it was meant."""
    window = mask[:, low:high].astype(np.float32)
    columns = np.arange(low, high)
    cost = window + 0.1 * np.abs(columns - ideal) / max(1, high - low)
    total = cost[0].copy()
    moves = np.zeros(window.shape, np.int8)
    blocked = np.array([np.inf], np.float32)
    for row in range(1, len(window)):
        options = np.stack(
            [
                np.concatenate([blocked, total[:-1]]) + 0.05,  # from the column on the left
                total,
                np.concatenate([total[1:], blocked]) + 0.05,  # from the column on the right
            ]
        )
        choice = options.argmin(axis=0)
        moves[row] = choice - 1
        total = cost[row] + options[choice, np.arange(len(total))]
    path = np.empty(len(window), np.int64)
    path[-1] = int(total.argmin())
    for row in range(len(window) - 1, 0, -1):
        path[row - 1] = path[row] + moves[row, path[row]]
    return path + low


def split_by_reading(
    ink: np.ndarray, groups: list[Piece], height: float, digit_width: float, score: Scorer
) -> list[Piece]:
    """Cut each group wider than READ_WIDER (or DOUBT_WIDER, if it reads doubtfully whole)
    where its pieces read best: every span between two candidate cuts that could be one
    digit is scored (one call for the whole picture), and the best chain of spans from the
    group's left edge to its right edge wins."""
    values = _read_once(
        ink, [g for g in groups if DOUBT_WIDER < g.width / height <= READ_WIDER], score
    )
    plans = [
        _spans(group, height, digit_width)
        if group.width > READ_WIDER * height
        or (group.width > DOUBT_WIDER * height and values[_key(group)] < DOUBT)
        else ([], [], 0)
        for group in groups
    ]
    pieces = [piece for _, candidates, _ in plans for piece in candidates]
    keys = [_key(piece) for piece in pieces]
    values |= _read_once(
        ink, [p for k, p in zip(keys, pieces, strict=True) if k not in values], score
    )
    # The model's score, less a cost for a piece much lower than the digits: a cut that
    # leaves a stroke's end or half a loop may still read confidently.
    scores = iter(
        [
            float(values[key]) - LOW_COST * max(0.0, LOW_PIECE - piece.height / height)
            for key, piece in zip(keys, pieces, strict=True)
        ]
    )
    digits = []
    for group, (spans, candidates, n_paths) in zip(groups, plans, strict=True):
        chosen = best_chain(spans, [next(scores) for _ in candidates], n_paths)
        if chosen is None:
            digits.extend(split_wide(group, height, digit_width))
        else:
            digits.extend(candidates[index] for index in chosen)
    return digits


def _read_once(ink: np.ndarray, pieces: list[Piece], score: Scorer) -> dict[tuple, float]:
    """Each distinct piece's score, by its key: different cuts often leave the same piece."""
    distinct = {_key(piece): piece for piece in pieces}
    inputs = [digit_input(ink, piece) for piece in distinct.values()]
    return dict(zip(distinct, score(np.stack(inputs)) if inputs else [], strict=True))


def _key(piece: Piece) -> tuple:
    return piece.top, piece.left, piece.mask.shape, piece.mask.tobytes()


def _spans(group: Piece, height: float, digit_width: float):
    """The spans between candidate cuts that could hold one digit: (first, last) path
    indices, their pieces, and the number of paths (both edges included)."""
    edges = [np.zeros(group.height, np.int64), np.full(group.height, group.width, np.int64)]
    paths = [edges[0], *cut_candidates(group, height, digit_width), edges[1]]
    loops = find_loops(group.mask, height)
    spans, pieces = [], []
    if group.width <= MAX_WIDTH * height:  # it may be one wide digit, kept whole
        spans, pieces = [(0, len(paths) - 1)], [group]
    for first in range(len(paths) - 1):
        for last in range(first + 1, len(paths)):
            too_wide = paths[last].min() - paths[first].max() > MAX_WIDTH * height
            if too_wide or (first, last) == (0, len(paths) - 1):
                continue
            piece = _between(group, paths[first], paths[last], height, loops)
            if piece is not None and piece.width <= MAX_WIDTH * height:
                spans.append((first, last))
                pieces.append(piece)
    return spans, pieces, len(paths)


def best_chain(spans: list[tuple[int, int]], scores: list[float], n_paths: int) -> list[int] | None:
    """The spans (indices) that chain from the first path to the last with the highest
    total score; None when no chain exists (dynamic programming over the paths)."""
    best: dict[int, tuple[float, list[int]]] = {0: (0.0, [])}
    for index in sorted(range(len(spans)), key=lambda i: spans[i][1]):
        first, last = spans[index]
        if first in best:
            total = best[first][0] + scores[index]
            if last not in best or total > best[last][0]:
                best[last] = (total, [*best[first][1], index])
    return best[n_paths - 1][1] if n_paths > 1 and n_paths - 1 in best else None


def cut_candidates(group: Piece, height: float, digit_width: float) -> list[np.ndarray]:
    """Where touching digits may meet, left to right: cut paths through the minima of the
    vertical ink projection, and through the evenly spaced positions ``split_wide`` would
    use for about as many digits as the width suggests."""
    profile = group.mask.sum(axis=0).astype(np.float32)
    profile = ndimage.uniform_filter1d(profile, max(1, int(0.05 * height)))
    reach = max(1, int(0.12 * height))
    lowest = profile == ndimage.minimum_filter1d(profile, 2 * reach + 1)
    runs, count = ndimage.label(lowest)
    columns = [int(np.mean(np.flatnonzero(runs == k))) for k in range(1, count + 1)]
    pieces = digit_count(group.width, height, digit_width)
    for n in range(max(2, pieces - 1), pieces + 2):
        columns.extend(round(k * group.width / n) for k in range(1, n))
    if GRID:  # junctions that are no projection minimum (a 1 leaning on a 0)
        columns.extend(np.arange(GRID * height, group.width, GRID * height).round().astype(int))
    margin = EDGE * height
    paths: list[np.ndarray] = []
    for column in sorted(c for c in columns if margin <= c <= group.width - margin):
        low, high = max(0, column - reach), min(group.width, column + reach + 1)
        path = cut_path(group.mask, low, high, column)
        if all(np.abs(path - other).mean() > 0.04 * height for other in paths):
            paths.append(path)
    return sorted(paths, key=lambda path: path.mean())


def find_loops(mask: np.ndarray, height: float) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """The closed loops of a group: each hole at least LOOP x height² big, the ink around
    it (the loop's stroke, with any stroke crossing it there) and the hole's area."""
    holes, count = ndimage.label(ndimage.binary_fill_holes(mask) & ~mask)
    if not count:
        return []
    half_width = 2 * np.median(ndimage.distance_transform_edt(mask)[mask])
    reach = max(1, math.ceil(RING * half_width))
    areas = np.bincount(holes.ravel())
    loops = []
    for label in np.flatnonzero(areas[1:] >= LOOP * height**2) + 1:
        hole = holes == label
        ring = ndimage.binary_dilation(hole, iterations=reach) & mask
        loops.append((hole, ring, int(areas[label])))
    return loops


def _between(
    group: Piece, left: np.ndarray, right: np.ndarray, height: float, loops: Sequence = ()
) -> Piece | None:
    """The ink of ``group`` between two cut paths, or None if it is a sliver.

    A loop belongs to one digit: a cut through its hole gives the loop's ink to the side
    that holds most of the hole, even beyond the cut, and takes it from the other side.
    Between overlapping digits the cheapest cut often runs through a 0's or a 9's hole
    (it crosses ink only at the loop's top and bottom); without this the 0 lost its left
    side to its neighbour and read as a 7."""
    columns = np.arange(group.width)[None, :]
    inside = (columns >= left[:, None]) & (columns < right[:, None])
    mask = group.mask & inside
    for hole, ring, area in loops:
        share = np.count_nonzero(hole & inside)
        if 0 < share < area:
            mask = mask | ring if share >= area / 2 else mask & ~ring
    if mask.sum() < 0.02 * height**2:
        return None
    # Where strokes cross, the cut leaves a neighbour's stroke ends on this side as small
    # loose bits cut off at the path, which would make the piece read as something else:
    # they are dropped. Loose bits the cut did not go through (a 5's detached bar) stay.
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count > 1:
        sizes = np.bincount(labels.ravel())
        cut_bits = np.unique(labels[_cut_through(group.mask, mask, left, right)])
        small = cut_bits[sizes[cut_bits] < LOOSE * sizes[1:].max()]
        mask &= ~np.isin(labels, small)
    rows, cols = np.nonzero(mask)
    if np.ptp(cols) + 1 < 0.1 * height or np.ptp(rows) + 1 < SHORT * height:
        return None  # too thin, or too low to be a digit (a 5's bar cut off its body)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    return Piece(group.top + rows.min(), group.left + cols.min(), mask[box])


def _cut_through(ink: np.ndarray, piece: np.ndarray, left: np.ndarray, right: np.ndarray):
    """Where the cut paths go through a stroke: the piece's pixels (rows, columns) with
    ink right across a path."""
    rows = np.arange(len(ink))
    beyond = np.pad(ink, ((0, 0), (1, 1)))  # paper past the group's edges; column c is c + 1
    hits = [
        (edge, piece[rows, edge] & beyond[rows, across + 1])
        for edge, across in ((left, left - 1), (right - 1, right))
    ]
    return (
        np.concatenate([rows[hit] for _, hit in hits]),
        np.concatenate([edge[hit] for edge, hit in hits]),
    )


def digit_input(ink: np.ndarray, piece: Piece) -> np.ndarray:
    """The 28x28 model input for one digit: the pipeline's thickness, fit and centring
    steps on a crop around it, with a margin wide enough that they see what they would
    see on the whole picture."""
    margin = math.ceil(0.3 * max(piece.height, piece.width)) + 4
    top, left = max(0, piece.top - margin), max(0, piece.left - margin)
    bottom = min(ink.shape[0], piece.bottom + margin)
    right = min(ink.shape[1], piece.right + margin)
    mask = np.zeros((bottom - top, right - left), bool)
    mask[piece.top - top : piece.bottom - top, piece.left - left : piece.right - left] = piece.mask
    thick_ink, thick = P.thicken(ink[top:bottom, left:right], mask)
    return P.centre_in_box(thick_ink, thick)


def _original_box(
    piece: Piece, scale_x: float, scale_y: float, shape, turn: Turn | None = None
) -> tuple[int, ...]:
    height, width = shape
    left, top, right, bottom = piece.left, piece.top, piece.right, piece.bottom
    if turn is not None:  # the box round the piece's corners, turned back
        x, y = turn.back(np.array([left, right, left, right]), np.array([top, top, bottom, bottom]))
        left, right, top, bottom = x.min(), x.max(), y.min(), y.max()
    return (
        min(max(0, math.floor(left * scale_x)), width),
        min(max(0, math.floor(top * scale_y)), height),
        max(0, min(width, math.ceil(right * scale_x))),
        max(0, min(height, math.ceil(bottom * scale_y))),
    )
