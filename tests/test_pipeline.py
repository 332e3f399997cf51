"""Each stage of the real-world pipeline on small synthetic arrays."""

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from digitrec import gallery
from digitrec import pipeline as P

from .conftest import under


def paper(height=120, width=100, level=0.9):
    return np.full((height, width), level, np.float32)


def test_grey_keeps_coloured_ink_that_luma_loses():
    image = np.zeros((40, 40, 3), np.uint8)
    image[:] = (0, 120, 0)  # green paper, luma 70
    image[10:30, 18:22] = (234, 0, 0)  # red ink, luma 70: invisible in grey
    luma = image.astype(float) @ [0.299, 0.587, 0.114]
    assert np.ptp(luma) < 2
    grey = P.to_grey(image)
    assert abs(grey[20, 20] - grey[0, 0]) > 0.8
    # Where colour adds no contrast, grey is ordinary luma (ITU-R 601, as Pillow's "L").
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = 9  # alpha is ignored: decode_image flattens it first
    rgba[0, 0, :3], rgba[0, 1, :3], rgba[1, 0, :3] = (40, 40, 40), (200, 200, 200), (90, 80, 70)
    np.testing.assert_allclose(P.to_grey(rgba) * 255, [[40, 200], [81.85, 0]], atol=0.01)
    plain = P.to_grey(np.stack([np.full((4, 4), 200, np.uint8)] * 3, axis=-1))
    np.testing.assert_allclose(plain, 200 / 255, atol=1e-3)
    with pytest.raises(ValueError):
        P.to_grey(np.zeros((4, 4, 2), np.uint8))


def test_working_size_bounds():
    assert max(P.working_size(np.zeros((16, 16), np.float32)).shape) == P.MIN_SIDE
    assert P.working_size(np.zeros((2000, 1000), np.float32)).shape == (P.MAX_SIDE, 192)
    same = np.zeros((100, 80), np.float32)
    assert P.working_size(same) is same


def test_polarity_either_way():
    dark_on_light = paper()
    dark_on_light[30:90, 45:55] = 0.1
    assert P.ink_is_dark(dark_on_light)
    assert not P.ink_is_dark(1 - dark_on_light)
    np.testing.assert_allclose(P.ink_map(dark_on_light), P.ink_map(1 - dark_on_light), atol=0.05)


def test_ink_map_evens_out_a_shadow():
    image = paper()
    image *= np.linspace(1.0, 0.35, 100)[None, :]  # light fades to a dark shadow on the right
    image[30:90, 20:26] *= 0.3  # stroke in the light
    image[30:90, 75:81] *= 0.3  # the same stroke in the shadow
    ink = P.ink_map(image)
    assert ink[60, 23] > 0.5 and ink[60, 78] > 0.5
    assert abs(ink[60, 23] - ink[60, 78]) < 0.15
    mask = P.ink_mask(ink)
    assert mask[60, 23] and mask[60, 78]
    assert not mask[:25].any() and not mask[95:].any()  # shadowed paper is still paper


def test_light_falling_off_towards_an_edge_is_not_ink():
    # A blank page under a lamp: a vignette, and light falling off to the left edge
    # (convex, as a quadratic fall-off is). Mirroring at the edge made a valley there
    # that the closing filled, and the dark side read as a band of ink.
    y, x = np.mgrid[0:200, 0:200] / 199
    page = (0.95 - 0.5 * (1 - x) ** 2 - 0.1 * (y - 0.5) ** 2).astype(np.float32)
    assert P.lighting_falloff(page) > P.UNEVEN
    assert P.ink_map(page).max() < P.MIN_INK
    assert P.normalize_stages(page).blank
    # Writing on that page is still found, near the dark edge too.
    page[50:150, 12:18] *= 0.35
    page[50:150, 120:126] *= 0.35
    mask = P.ink_mask(P.ink_map(page))
    assert mask[100, 15] and mask[100, 123]
    assert mask.sum() < 2 * 6 * 100 * 1.5


def test_lighting_falloff_is_zero_on_even_paper_and_tight_crops():
    assert P.lighting_falloff(paper()) < 1e-6
    crop = paper(32, 32)
    crop[:, :8] = 0.05  # a stroke along the edge of a tight crop
    crop[10:22, 8:30] = 0.05  # ink covering most of it
    crop[:4] = 0.05
    assert P.lighting_falloff(crop) < P.UNEVEN


def test_polarity_under_a_hard_shadow_over_most_of_the_page():
    # Dark ink in a shadow that covers two thirds of the page: lit paper is as far
    # above the median as the ink is below it, so only the lighting-free test decides.
    image = paper(120, 120)
    image[:, 40:] *= 0.5
    image[20:100, 70:76] = 0.02
    assert P.ink_is_dark(image)
    assert not P.ink_is_dark(1 - image)


def test_a_shadows_hard_edge_is_not_ink():
    image = paper(120, 120)
    image[:, 60:] *= 0.45  # hard shadow edge, nothing written
    assert not P.ink_mask(P.ink_map(image)).any()


def slanted_shadow(size=120, slope=0.6, softness=2.0):
    """Paper with a shadow whose edge runs across it at a slant and meets its border."""
    y, x = np.mgrid[0:size, 0:size]
    edge = x - (size / 2 + slope * (y - size / 2))
    return (paper(size, size) * (1 - 0.55 / (1 + np.exp(-edge / softness)))).astype(np.float32)


def test_the_tip_of_a_shadow_is_not_writing():
    image = slanted_shadow()
    mask = P.ink_mask(P.ink_map(image))
    assert mask.sum() > 100  # where the shadow's edge meets the border, a wedge of "ink"
    assert not P.drop_shading(mask, image).any()
    assert P.normalize_stages(np.uint8(image * 255)).blank
    written = image.copy()
    written[20:100, 28:34] *= 0.25  # a stroke in the light
    written[56:62, 40:100] *= 0.25  # a stroke across the shadow's edge
    written_mask = P.ink_mask(P.ink_map(written))
    kept = P.drop_shading(written_mask, written)
    assert kept[60, 30] and kept[59, 50] and kept[59, 90]
    assert kept.sum() < written_mask.sum()  # the wedge went
    # A faint pencil stroke running into the shadow is lighter than the shadowed paper
    # it left behind: each part is judged against the paper right beside it.
    pencil = image.copy()
    pencil[56:62, 40:100] *= 0.6
    kept = P.drop_shading(P.ink_mask(P.ink_map(pencil)), pencil)
    assert kept[59, 50] and kept[59, 90]


def test_drop_region_rims_keeps_strokes_at_the_border():
    # A bar at the picture's edge with paper on both sides is writing (a 1 in a tight
    # crop); the same bar with a darker region beyond it is where that region begins.
    page = np.full((60, 80), 0.9)
    mask = np.zeros(page.shape, bool)
    mask[:, 40:44] = True
    page[mask] = 0.2
    assert P.drop_region_rims(mask, page).any()
    page[:, 44:] = 0.5
    assert not P.drop_region_rims(mask, page).any()


def test_the_edge_of_a_sheet_on_a_table_is_not_a_digit():
    # The sheet's shadow, the darkest strip at the table's edge, passed for a 1.
    for seed in (7, 13, 28):
        assert P.normalize_stages(
            under(np.full((280, 280), 255.0), gallery.paper_edge, seed=seed)
        ).blank
    seven = np.full((280, 280), 255.0)
    seven[60:76, 80:200] = 30
    seven[76:220, 170:186] = 30
    for seed in (7, 13, 28):
        stages = P.normalize_stages(under(seven, gallery.paper_edge, seed=seed))
        assert not stages.blank and stages.cleaned.sum() > 2000


def test_a_tight_crop_is_not_a_page():
    # A bold digit cropped to its ink: strokes wider than the paper estimate's window
    # leave dark patches beside the mask, which are ink, not shade.
    bold = np.full((32, 32), 255, np.uint8)
    bold[:, 4:28] = 0
    bold[8:24, 11:21] = 255  # a bold 0 filling its crop
    assert not P.normalize_stages(bold).page
    assert not P.normalize_stages(255 - bold).page
    assert P.normalize_stages(np.uint8(slanted_shadow() * 255)).page


def test_otsu_and_mask():
    values = np.concatenate([np.full(500, 0.1), np.full(100, 0.8)])
    assert 0.1 < P.otsu_threshold(values) < 0.8
    assert not P.ink_mask(np.full((20, 20), 0.05, np.float32)).any()  # too faint: blank
    ink = np.zeros((20, 20), np.float32)
    ink[5:15, 9:11] = 0.9
    np.testing.assert_array_equal(P.ink_mask(ink), ink > 0.5)


def test_ruled_lines_go_but_a_digits_bar_stays():
    mask = np.zeros((200, 200), bool)
    mask[50, :] = mask[100, :] = mask[150, 5:] = True  # ruled lines, 1 px
    mask[60:140, 95:105] = True  # the digit's stroke crossing them
    cleaned = P.remove_ruled_lines(mask)
    assert not cleaned[50, :40].any() and not cleaned[150, 150:].any()
    assert cleaned[70:90, 95:105].all()
    squared = np.zeros((200, 200), bool)
    squared[::20, :] = squared[:, 5::20] = True  # squared paper, 1 px lines
    squared[30:170, 92] = True  # a 1-px stroke crossing seven of them
    kept = P.remove_ruled_lines(squared)
    assert kept[30:170, 92].all()  # put back where it crosses: still one piece
    assert not kept[100, 100:].any() and not kept[150:, 45].any()
    tight_seven = np.zeros((64, 64), bool)
    tight_seven[0:8, :] = True  # a bar as thick as the strokes, in a tight crop
    tight_seven[:, 40:48] = True
    np.testing.assert_array_equal(P.remove_ruled_lines(tight_seven), tight_seven)
    # A thick stroke, a little slanted, down a tight crop holds thin straight runs; they have
    # ink beside them, so they are no ruled lines.
    tight_one = _bar(np.zeros((64, 64), bool), (26, 0), (36, 63), 8)
    np.testing.assert_array_equal(P.remove_ruled_lines(tight_one), tight_one)


def test_a_box_printed_round_a_digit_goes_but_a_square_zero_stays():
    mask = np.zeros((120, 160), bool)
    mask[20:22, 30:130] = mask[98:100, 30:130] = True  # a form's box, 2 px lines ...
    mask[20:100, 30:32] = mask[20:100, 128:130] = True
    mask[20:100, 79:81] = True  # ... of two boxes side by side
    mask[35:99, 50:56] = True  # a 1 touching the box's bottom line
    mask[40:46, 90:118] = mask[40:90, 112:118] = True  # a 7 in the second box
    cleaned = P.drop_frames(mask)
    assert not cleaned[20:22].any() and not cleaned[:, 128:130].any()
    assert not cleaned[50:90, 79:81].any()  # the divider between the boxes
    assert cleaned[35:98, 50:56].all() and cleaned[40:46, 92:118].all()  # strokes whole
    zero = np.zeros((120, 160), bool)
    zero[20:100, 50:110] = True
    zero[29:91, 59:101] = False  # a square 0 written with a 9 px pen
    np.testing.assert_array_equal(P.drop_frames(zero), zero)


def test_a_digit_in_a_printed_box_is_read_without_the_box():
    """A photo of one box of a form: the box was kept as the digit and read as a 0."""
    image = np.full((110, 110), 240, np.uint8)
    image[20:22, 20:90] = image[88:90, 20:90] = image[20:90, 20:22] = image[20:90, 88:90] = 50
    image[30:80, 52:58] = 30  # a 1
    stages = P.normalize_stages(image)
    rows, cols = np.nonzero(stages.cleaned)
    assert np.ptp(cols) < 0.2 * np.ptp(rows)  # the stroke alone: tall and thin


def test_a_forms_comb_under_the_digit_is_no_part_of_it():
    """A form's comb (a baseline with a tick at each end), apart from the digit above
    it, was kept with it: a 7 over a comb was read as a 3."""
    seven = np.zeros((140, 140), bool)
    seven[30:36, 50:90] = seven[30:100, 84:90] = True
    comb = seven.copy()
    comb[108:110, 30:110] = comb[88:110, 30:32] = comb[88:110, 108:110] = True
    np.testing.assert_array_equal(P.keep_digit_components(comb), seven)
    # The foot of a 1 drawn apart is flat and wider than the 1, but no cup: it stays.
    one = np.zeros((140, 140), bool)
    one[30:100, 66:72] = one[104:110, 50:90] = True
    np.testing.assert_array_equal(P.keep_digit_components(one), one)
    # The foot of a 2 broken off is narrower than the 2: it stays.
    two = np.zeros((140, 140), bool)
    two[30:36, 50:90] = two[30:70, 84:90] = two[64:70, 50:90] = two[64:96, 50:56] = True
    two[100:106, 52:86] = True
    np.testing.assert_array_equal(P.keep_digit_components(two), two)


@pytest.mark.parametrize("line_rows", [(120, 122), (120, 130)])
def test_an_underline_is_no_part_of_the_digit(line_rows):
    """An underlined 7 was kept with its line and read as a 2, or as a 1 when the line,
    drawn with a firmer pen, outweighed the 7 and was taken for the digit."""
    seven = np.zeros((160, 160), bool)
    seven[30:33, 50:90] = seven[30:110, 87:90] = True
    underlined = seven.copy()
    underlined[slice(*line_rows), 40:100] = True
    np.testing.assert_array_equal(P.keep_digit_components(underlined), seven)
    # Joined to the digit by fainter ink, it is the digit's own stroke, broken by the
    # threshold (the base of a blurred 2 whose diagonal is faint): it stays.
    faint = underlined.copy()
    faint[110:120, 87:90] = True
    np.testing.assert_array_equal(P.keep_digit_components(underlined, faint), underlined)


def ring(shape, box, start=0, end=360, width=4) -> np.ndarray:
    """A hand-drawn circle's mask: an arc of the ellipse in ``box`` (x0, y0, x1, y1)."""
    canvas = Image.new("L", shape[::-1])
    ImageDraw.Draw(canvas).arc(box, start, end, fill=255, width=width)
    return np.asarray(canvas) > 0


@pytest.mark.parametrize("arc", [(0, 360), (110, 420)])  # closed, and left open 50 degrees
def test_a_circle_drawn_around_the_digit_is_no_part_of_it(arc):
    """A circled 7 was read as a 0: the circle outweighed the 7 and was kept as the digit."""
    seven = np.zeros((200, 200), bool)
    seven[60:64, 80:120] = seven[60:140, 116:120] = True
    circled = seven | ring(seven.shape, (40, 25, 160, 175), *arc)
    np.testing.assert_array_equal(P.keep_digit_components(circled), seven)
    # A 0 with a dot in it (written so, not to be read as an O) is no circle round a dot.
    zero = ring(seven.shape, (60, 40, 140, 160), width=8)
    dotted = zero.copy()
    dotted[95:105, 95:105] = True
    np.testing.assert_array_equal(P.keep_digit_components(dotted), zero)


def test_a_circle_the_digit_touches_is_cut_away():
    """One piece with the digit (a circled 7 whose stem reaches the circle), the circle
    is cut away along the outline; a slashed zero is not a circled 1, nor a plain 0 a
    circle."""
    seven = np.zeros((200, 200), bool)
    seven[60:64, 80:120] = seven[60:171, 116:120] = True  # the stem runs into the circle
    circle = ring(seven.shape, (40, 25, 160, 175))
    kept = P.keep_digit_components(seven | circle)
    assert not (kept & circle & ~seven).any()  # none of the circle is kept
    assert (kept & seven).sum() >= 0.8 * seven.sum()  # and most of the 7 is
    zero = ring(seven.shape, (60, 40, 140, 160), width=6)
    slashed = zero | ndimage.binary_dilation(np.eye(200, dtype=bool)[::-1], iterations=2)
    slashed[:30] = slashed[170:] = False  # the slash, a little longer than the 0 is tall
    # A thin 0 drawn with a wobbly hand: its outline leaves a few pixels past the band.
    angles = np.linspace(0, 2 * np.pi, 40)
    radius = 1 + np.random.default_rng(0).normal(0, 0.04, 40)
    radius[-1] = radius[0]
    canvas = Image.new("L", (200, 200))
    outline = np.stack([100 + 30 * radius * np.cos(angles), 100 + 60 * radius * np.sin(angles)], 1)
    ImageDraw.Draw(canvas).line([tuple(point) for point in outline], fill=255, width=2)
    wobbly = np.asarray(canvas) > 0
    for whole in (zero, slashed, wobbly):
        np.testing.assert_array_equal(P.keep_digit_components(whole), whole)


def test_components_drop_specks_and_paper_edges_not_digit_pieces():
    mask = np.zeros((200, 200), bool)
    mask[:, :15] = True  # dark table along the left edge
    mask[60:140, 95:105] = True  # the digit
    mask[60:66, 80:120] = True
    mask[180:182, 180:182] = True  # a speck
    kept = P.keep_digit_components(mask)
    assert kept[100, 100] and not kept[:, :15].any() and not kept[181, 181]
    broken = np.zeros((64, 64), bool)  # a tight crop of a digit in three pieces
    broken[0:30, 10:18] = broken[34:64, 10:18] = broken[20:28, 30:60] = True
    np.testing.assert_array_equal(P.keep_digit_components(broken), broken)


def test_a_band_along_the_edge_alone_is_not_writing():
    blank_with_edge = np.zeros((200, 200), bool)
    blank_with_edge[:, 185:] = True  # the paper's edge and the table beyond: nothing else
    assert not P.keep_digit_components(blank_with_edge).any()
    seven = np.zeros((64, 48), bool)  # a tight crop of a 7: its bar runs along the top
    seven[:8, :] = True
    for row in range(8, 64):
        seven[row, max(0, 40 - row // 2) : 48 - row // 2] = True
    np.testing.assert_array_equal(P.keep_digit_components(seven), seven)
    one = np.zeros((64, 20), bool)  # a tight crop of a 1: all of it along both sides
    one[:, 4:16] = True
    np.testing.assert_array_equal(P.keep_digit_components(one), one)


def test_grain_and_dust_alone_are_not_writing_but_a_digit_among_them_is():
    rng = np.random.default_rng(0)
    dusty = np.zeros((200, 200), bool)
    for row, col in rng.integers(5, 190, size=(30, 2)):
        side = int(rng.integers(2, 5))  # specks of 4-16 pixels, scattered over the page
        dusty[row : row + side, col : col + side] = True
    dusty[100:106, 100:104] = True  # the largest mark: 24 pixels, not 3x the next
    assert not P.keep_digit_components(dusty).any()
    written = dusty.copy()
    written[60:140, 95:105] = True  # a digit's stroke stands out from the dust
    kept = P.keep_digit_components(written)
    assert kept[120, 100] and kept.sum() < written.sum()
    few = np.zeros((200, 200), bool)  # two pieces of one small mark are not clutter
    few[100:110, 100:103] = few[100:110, 106:109] = True
    assert P.keep_digit_components(few).any()


def test_stroke_width_and_thickening():
    mask = np.zeros((100, 100), bool)
    mask[10:90, 40:46] = True
    assert P.stroke_width(mask) == pytest.approx(6, abs=1.5)
    thin = np.zeros((100, 100), bool)
    thin[10:90, 50] = True
    ink, grown = P.thicken(thin.astype(np.float32), thin)
    assert P.stroke_width(grown) >= 0.1 * 80 and ink[50, 52] > 0.5
    thick = np.zeros((100, 100), bool)
    thick[10:90, 40:55] = True
    assert P.thicken(thick.astype(np.float32), thick)[1] is thick


def test_stroke_width_is_measured_on_the_ink_and_its_ring_of_paper_alone():
    def over_whole_picture(mask):
        distance = ndimage.distance_transform_edt(mask)
        ridge = (distance == ndimage.maximum_filter(distance, size=3)) & mask
        return float(2 * distance[ridge].mean() - 1)

    rng = np.random.default_rng(0)
    for _ in range(50):  # scattered strokes, many running off the picture's edges
        mask = ndimage.binary_dilation(rng.random((30, 40)) < 0.02, iterations=2)
        mask[: rng.integers(0, 10)] = False
        assert P.stroke_width(mask) == over_whole_picture(mask)
        assert P.stroke_width(np.pad(mask, 25)) == over_whole_picture(np.pad(mask, 1))


def test_centre_in_box_fits_20_and_centres_mass():
    ink = np.zeros((300, 100), np.float32)
    ink[20:280, 10:40] = 1.0  # tall and off-centre
    out = P.centre_in_box(ink, ink > 0)
    assert out.shape == (28, 28) and out.dtype == np.uint8 and out.max() == 255
    rows, cols = np.nonzero(out > 30)
    assert 19 <= np.ptp(rows) + 1 <= 21 and np.ptp(cols) + 1 <= 8  # aspect ratio kept
    cy, cx = ndimage.center_of_mass(out.astype(float))
    assert abs(cy - 13.5) < 0.6 and abs(cx - 13.5) < 0.6
    assert not P.centre_in_box(ink, np.zeros_like(ink, bool)).any()


def test_normalize_a_photographed_one():
    rng = np.random.default_rng(0)
    photo = np.full((400, 300, 3), 215, np.float32) + rng.normal(0, 6, (400, 300, 1))
    photo *= np.linspace(1.0, 0.6, 300)[None, :, None]  # uneven light
    photo[60:340, 180:196] = (40, 40, 90)  # a blue pen '1', right of centre
    photo[:, :20] = 30  # the dark table beside the paper
    stages = P.normalize_stages(np.clip(photo, 0, 255).astype(np.uint8))
    out = stages.output
    assert not stages.blank and out.shape == (28, 28)
    rows, cols = np.nonzero(out > 50)
    assert np.ptp(rows) + 1 >= 19 and np.ptp(cols) + 1 <= 8  # a centred upright stroke
    assert abs(cols.mean() - 13.5) < 1.5
    assert P.normalize_stages(np.full((50, 50, 3), 200, np.uint8)).blank


def test_a_small_thin_digit_in_a_big_photo_is_found():
    photo = np.full((480, 640), 230, np.uint8)
    photo[300:360, 500:503] = 40  # a 60-pixel-tall thin 1: 0.06% of the picture
    stages = P.normalize_stages(photo)
    assert not stages.blank
    assert stages.output[4:24, 12:16].mean() > 100  # an upright stroke in the middle


def test_a_lone_speck_is_not_a_digit():
    paper = np.full((300, 300), 220, np.uint8)
    paper[150:153, 150:153] = 30
    assert P.normalize_stages(paper).blank


def test_thin_red_ink_on_green_paper_is_seen():
    image = np.zeros((200, 200, 3), np.uint8)
    image[...] = (60, 140, 60)  # green paper
    image[60:140, 99:101] = (200, 40, 40)  # a thin red 1 of much the same brightness
    assert not P.normalize_stages(image).blank


def test_polarity_sees_a_thin_light_stroke_on_a_dark_screen():
    screen = np.full((300, 300), 20, np.float32) / 255
    screen[100:200, 150:152] = 0.95  # a hairline 1 covering 0.2% of the picture
    assert not P.ink_is_dark(screen)
    assert P.ink_is_dark(1 - screen)


def bold_ring(side=16) -> np.ndarray:
    """A bold 0 cropped to its ink, white on black as USPS stores it: half the picture
    is ink, so the most common brightness is the ink's, and its hole looks like paper."""
    y, x = np.mgrid[0:side, 0:side]
    radius = np.hypot((y - (side - 1) / 2) / (side / 1.95), (x - (side - 1) / 2) / (side / 2.46))
    return (((radius > 0.45) & (radius < 1.0)) * 255).astype(np.uint8)


def test_a_tight_crop_of_a_bold_digit_leaves_the_polarity_in_doubt():
    ring = bold_ring()
    grey = P.working_size(P.to_grey(ring))
    assert P.ink_is_dark(grey)  # wrong: the majority is ink
    assert P.polarity_unsure(grey, True)
    first = P.normalize_stages(ring)
    assert first.ink_dark and first.unsure
    assert first.output[14, 14] > 128  # read this way, the hole filled in: a blob
    other = P.normalize_stages(ring, ink_dark=False)
    assert not other.ink_dark and not other.unsure  # a forced polarity is not questioned
    assert other.output[14, 14] < 64 and other.output[14, 4:24].max() > 128  # hole and all
    np.testing.assert_array_equal(P.reread(first, ink_dark=False).output, other.output)


def test_an_ordinary_picture_leaves_no_doubt():
    image = paper(level=0.95)
    image[30:90, 45:53] = 0.1
    for picture in (image, 1 - image):
        grey = P.working_size(picture)
        assert not P.polarity_unsure(grey, P.ink_is_dark(grey))
    # A page under uneven light is not a tight crop, whatever its border looks like.
    shaded = image * np.linspace(1.0, 0.3, 100)[None, :]
    assert not P.normalize_stages((shaded * 255).astype(np.uint8)).unsure


def stretched_one(side=16) -> np.ndarray:
    """A 1 with a long flag and a foot, dark on white, stretched to fill its 16x16 box as
    Semeion's scanner stored every digit: the flag reaches the left edge, the foot the
    right one."""
    image = np.full((side, side), 255, np.uint8)
    stem = side * 5 // 8
    image[:, stem : stem + 2] = 0
    for column in range(stem):  # the flag, from the stem's top down to the left edge
        row = (stem - column) * (side // 3) // stem
        image[row : row + 2, column] = 0
    image[-2:, side // 3 :] = 0  # the foot
    return image


def test_ink_that_fills_its_frame_is_read_narrowed_too():
    one = stretched_one()
    first = P.normalize_stages(one)
    assert first.fills and first.width == 1 and P.fills_frame(first.cleaned)
    narrowed = P.normalize_stages(one, ink_dark=True, width=0.5)
    assert narrowed.width == 0.5 and not narrowed.fills  # asked once, of the picture as is
    # Read again from the first reading's grey, the same stages come out.
    again = P.reread(first, width=0.5)
    np.testing.assert_array_equal(again.grey, narrowed.grey)
    np.testing.assert_array_equal(again.output, narrowed.output)
    with pytest.raises(ValueError):
        P.reread(narrowed, width=0.8)
    # Narrowed on paper: the ink spans half the picture's width, centred, at full height.
    columns = np.flatnonzero(narrowed.cleaned.any(axis=0))
    width = narrowed.cleaned.shape[1]
    assert abs(len(columns) / width - 0.5) < 0.05 and abs(columns.mean() / width - 0.5) < 0.05
    assert narrowed.cleaned[0].any() and narrowed.cleaned[-1].any()
    # The digit comes out narrower in the 20x20 box.
    wide = np.ptp(np.flatnonzero(first.output.any(axis=0)))
    assert np.ptp(np.flatnonzero(narrowed.output.any(axis=0))) < 0.7 * wide
    # A digit with paper around it, or touching only some edges, is read as it is.
    page = np.full((40, 40), 255, np.uint8)
    page[5:35, 18:23] = 0
    assert not P.normalize_stages(page).fills
    assert not P.normalize_stages(page[5:35]).fills  # top and bottom, not the sides
    # A tall picture filled edge to edge was cropped to its ink, not stretched to a box.
    assert not P.normalize_stages(np.repeat(one, 2, axis=0)).fills


def test_narrow_pads_with_paper_of_either_polarity():
    grey = np.zeros((4, 8), np.float32)
    grey[:, 2:6] = 1.0  # a light stroke on dark paper, the paper along the border
    out = P.narrow(grey, 0.5, dark=False)
    assert out.shape == grey.shape and out.dtype == grey.dtype
    np.testing.assert_allclose(out[:, :2], 0)
    np.testing.assert_allclose(out[:, 6:], 0)
    np.testing.assert_allclose(out[:, 2:6], [[0, 1, 1, 0]] * 4)  # 8 columns squeezed into 4
    np.testing.assert_allclose(P.narrow(1 - grey, 0.5, dark=True)[:, :2], 1)
    assert P.narrow(grey, 0.99, dark=False) is grey  # too little to narrow


def test_a_big_photo_is_averaged_down_before_it_is_made_grey():
    """A 12-megapixel photo is made grey at a fraction of its pixels (1.5 s -> 0.1 s),
    still at twice the working size or more, and reads as the picture it shows."""
    small = np.full((300, 400, 3), 230, np.uint8)
    small[60:240, 180:215] = (30, 30, 90)  # a blue-black stroke on paper
    big = np.repeat(np.repeat(small, 10, axis=0), 10, axis=1)  # 3000 x 4000
    scale = P.working_scale(big.shape)
    shrunk = P.shrink(big, scale)
    assert shrunk.dtype == np.uint8 and shrunk.shape[2] == 3
    assert 2 * P.MAX_SIDE <= max(shrunk.shape[:2]) < 4 * P.MAX_SIDE
    assert np.array_equal(shrunk[100, 100], small[30, 40])  # blocks of paper stay paper
    assert P.shrink(small, P.working_scale(small.shape)) is small  # nothing to gain
    as_float = big.astype(np.float32)
    assert P.shrink(as_float, scale) is as_float  # only decoded pictures (uint8)
    # The same input as from the small picture, up to resampling at the stroke's edges.
    difference = np.abs(P.normalize(big).astype(int) - P.normalize(small))
    assert difference.mean() < 3 and np.count_nonzero(difference > 40) == 0


def note_on_table(note_side=150, size=(300, 300), angle=20.0, paper=0.9, table=0.3, at=(40, 60)):
    """A grey picture of a light note, turned, on a darker table, with a dark 7 on it;
    and the 7's own mask there."""
    note = Image.new("L", (note_side, note_side), int(paper * 255))
    draw = ImageDraw.Draw(note)
    s = note_side
    draw.line([(0.3 * s, 0.25 * s), (0.7 * s, 0.25 * s), (0.45 * s, 0.8 * s)], fill=25, width=5)
    mask = Image.new("L", note.size, 0)
    ImageDraw.Draw(mask).line(
        [(0.3 * s, 0.25 * s), (0.7 * s, 0.25 * s), (0.45 * s, 0.8 * s)], fill=255, width=5
    )
    alpha = Image.new("L", note.size, 255).rotate(angle, expand=True)
    note, mask = note.rotate(angle, expand=True), mask.rotate(angle, expand=True)
    picture = Image.new("L", (size[1], size[0]), int(table * 255))
    picture.paste(note, (at[1], at[0]), alpha)
    seven = Image.new("L", picture.size, 0)
    seven.paste(mask, (at[1], at[0]), alpha)
    return np.asarray(picture), np.asarray(seven) > 127


def test_a_note_smaller_than_the_table_it_lies_on_is_paper_not_ink():
    # The table is the most common brightness, so the note was taken for light ink: a
    # blob. On the note is the dark 7, and the table is painted over.
    picture, seven = note_on_table()
    grey = picture / np.float32(255)
    assert not P.ink_is_dark(grey)
    sheet, painted, dark = P.find_sheet(grey, False)
    assert dark and 0.15 < sheet.mean() < 0.45
    stages = P.normalize_stages(picture)
    assert stages.ink_dark
    assert np.count_nonzero(stages.cleaned & ~ndimage.binary_dilation(seven, iterations=3)) == 0
    assert np.count_nonzero(stages.cleaned & seven) > 0.8 * np.count_nonzero(seven)


def test_the_table_round_a_bigger_note_is_no_ink():
    # The note covers most of the picture: the polarity is right, but the table's
    # corners were ink too.
    picture, seven = note_on_table(note_side=230, angle=20, at=(20, 5))
    grey = picture / np.float32(255)
    assert P.ink_is_dark(grey)
    sheet, painted, dark = P.find_sheet(grey, True)
    assert dark and sheet.mean() > 0.5
    stages = P.normalize_stages(picture)
    assert np.count_nonzero(stages.cleaned & ~ndimage.binary_dilation(seven, iterations=3)) == 0


def seven_on_paper(size=280) -> np.ndarray:
    seven = np.full((size, size), 0.95, np.float32)
    seven[60:70, 80:200] = 0.1
    seven[70:220, 170:180] = 0.1
    return seven


def test_a_page_with_the_table_beyond_one_edge_is_no_sheet():
    # The page runs out of the picture on three sides: no corner of it is in view. (Its
    # table is dropped as a band along the edge, as before.)
    seven = np.full((280, 280), 255.0)
    seven[60:76, 80:200] = 30
    seven[76:220, 170:186] = 30
    for seed in (1, 2, 4, 5, 7):
        picture = under(seven, gallery.paper_edge, seed=seed)
        grey = P.working_size(P.to_grey(picture))
        assert P.find_sheet(grey, P.ink_is_dark(grey)) is None


def test_a_shadow_across_the_page_is_no_sheet():
    # Its edge runs from one side of the picture to another: no corner of a sheet in view.
    y, x = np.mgrid[0:280, 0:280]
    shaded = seven_on_paper() * np.where(x + y > 300, 0.45, 1.0).astype(np.float32)
    assert P.find_sheet(shaded, P.ink_is_dark(shaded)) is None


def test_a_narrow_bold_zero_on_a_dark_canvas_is_no_sheet():
    # Its hole is a slit, as thin as a stroke; but its outline is an ellipse.
    y, x = np.mgrid[0:280, 0:280]
    zero = np.where(((x - 140) / 70.0) ** 2 + ((y - 140) / 120.0) ** 2 < 1, 0.9, 0.1)
    zero[((x - 140) / 6.0) ** 2 + ((y - 140) / 70.0) ** 2 < 1] = 0.1
    zero = zero.astype(np.float32)
    assert P.find_sheet(zero, P.ink_is_dark(zero)) is None


def test_light_falling_off_across_a_row_of_digits_is_no_sheet():
    # The threshold splits the page along the falloff: a convex lit part, ragged where
    # it meets the picture's edge, but with the same grey on either side of its edge.
    y, x = np.mgrid[0:192, 0:468]
    light = np.clip(0.55 + 0.4 * (x - 40 - 0.4 * y) / 160, 0.55, 0.95)
    for seed in (17, 20):
        grey = light * (1 + np.random.default_rng(seed).normal(0, 0.04, light.shape))
        for k in range(5):
            grey[50:140, 60 + 80 * k : 68 + 80 * k] *= 0.3
        grey = np.clip(grey, 0, 1).astype(np.float32)
        assert P.find_sheet(grey, P.ink_is_dark(grey)) is None


def test_a_thick_zero_drawn_with_the_mouse_is_no_sheet():
    # Filled in, it has the corner where the stroke began; but its outline is round.
    for seed in (1, 5, 8, 10, 13):
        grey = 1 - gallery.mouse_shape(0, np.random.default_rng(seed), "thick")
        assert P.find_sheet(grey, P.ink_is_dark(grey)) is None


def test_an_apps_palette_beside_the_digit_is_no_sheet():
    # A dark palette with light lettering on it: the digit on the canvas beside it is
    # writing, longer than the lettering.
    app = seven_on_paper()
    app[170:270, 5:100] = 0.25
    for top in range(180, 265, 20):
        app[top : top + 2, 15:85] = 0.8
    assert P.find_sheet(app, P.ink_is_dark(app)) is None


def test_a_tight_crop_is_no_photo_of_a_table():
    picture, _ = note_on_table(note_side=60, size=(110, 110), at=(10, 10))
    assert P.find_sheet(picture / np.float32(255), False) is None
    assert P.find_sheet(np.asarray(Image.fromarray(picture).resize((220, 220))) / 255.0, False)


def test_a_rectangles_corners_turn_and_an_ellipse_has_none():
    y, x = np.mgrid[0:200, 0:200]
    rectangle = np.zeros((200, 200), bool)
    rectangle[60:140, 50:150] = True
    turned = ndimage.rotate(rectangle.astype(float), 30, reshape=False, order=1) > 0.5
    solid, corners = P.outline(turned)
    assert solid > 0.95
    assert P.turns(corners).max() > 80  # a corner, its pixel steps and all
    solid, corners = P.outline(((x - 100) / 80.0) ** 2 + ((y - 100) / 50.0) ** 2 < 1)
    assert solid > 0.95
    assert P.turns(corners).max() < 40


def _ring(mask, centre, radius, width):
    """A thin 0: a ring of ink of ``width`` pixels."""
    rows, cols = np.ogrid[: mask.shape[0], : mask.shape[1]]
    distance = np.hypot((rows - centre[0]) / 1.4, cols - centre[1])
    mask |= np.abs(distance - radius) <= width / 2
    return mask


def _bar(mask, start, stop, width):
    """A straight bar (a pen, a 1) from ``start`` to ``stop`` (x, y), ``width`` wide."""
    canvas = Image.fromarray(mask.astype(np.uint8) * 255)
    ImageDraw.Draw(canvas).line([start, stop], fill=255, width=width)
    return np.asarray(canvas) > 0


def test_a_pen_beside_the_digit_is_no_part_of_it():
    zero = _ring(np.zeros((240, 240), bool), (120, 80), 30, 3)
    thick = _bar(zero, (170, 30), (190, 210), 16)  # a pen: 5x the strokes' width
    np.testing.assert_array_equal(P.drop_objects(thick), zero)
    long = _bar(zero, (150, 5), (160, 235), 4)  # a thin pen, more than twice the 0's height
    np.testing.assert_array_equal(P.drop_objects(long), zero)
    # A pen its light splits lengthways: a thin bar along it goes with it.
    split = _bar(_bar(zero, (170, 30), (190, 210), 12), (182, 30), (202, 210), 3)
    np.testing.assert_array_equal(P.drop_objects(split), zero)


def test_a_one_or_a_fours_bar_is_no_pen():
    ten = _bar(_ring(np.zeros((240, 240), bool), (120, 150), 30, 4), (70, 75), (70, 165), 4)
    np.testing.assert_array_equal(P.drop_objects(ten), ten)  # a 1 as tall as the 0
    four = np.zeros((240, 240), bool)  # the bar drawn apart meets the rest of the 4
    four = _bar(_bar(four, (100, 40), (60, 140), 4), (60, 140), (131, 140), 4)
    four = _bar(four, (136, 8), (138, 232), 4)  # a few pixels short of the 4's bar
    np.testing.assert_array_equal(P.drop_objects(four), four)
    # A 1 written bolder than the 0 beside it, leaning, no taller, in the 0's row: a 1.
    ten = _bar(_ring(np.zeros((240, 240), bool), (150, 150), 40, 3), (50, 82), (80, 158), 14)
    np.testing.assert_array_equal(P.drop_objects(ten), ten)
    bold_one = _bar(np.zeros((240, 240), bool), (120, 30), (120, 210), 18)
    bold_one[40:44, 40:44] = True  # dust beside a bold 1: the 1 is the writing
    np.testing.assert_array_equal(P.drop_objects(bold_one), bold_one)
    # A long thin pencil lying above "10", bigger than the digits: the 1 is weighed
    # against the 0, not against the pencil, and stays; the pencil goes.
    ten = _bar(_ring(np.zeros((240, 400), bool), (160, 100), 30, 4), (200, 130), (200, 190), 5)
    pencil = _bar(ten, (60, 8), (330, 34), 5)
    np.testing.assert_array_equal(P.drop_objects(pencil), ten)
    # A bold 1 written in a form's box, above its thin comb: the comb is no writing.
    boxed = _bar(np.zeros((240, 240), bool), (110, 60), (125, 150), 10)
    boxed[178:181, 40:201] = boxed[130:181, 40:43] = boxed[130:181, 198:201] = True
    np.testing.assert_array_equal(P.drop_objects(boxed), boxed)


def test_on_a_page_what_the_pictures_edge_cuts_is_not_the_digit():
    one = _bar(np.zeros((240, 240), bool), (120, 60), (125, 180), 8)
    pen = _bar(one, (160, 240), (240, 160), 30)  # the end of a pen, cut by the corner
    for bit in range(8):  # and split into bits by its light
        pen[200 + 4 * bit : 202 + 4 * bit, 225:240] = False
    np.testing.assert_array_equal(P.keep_digit_components(pen, page=True), one)
    # In a tight crop the digit's own pieces touch the edge: all of them are kept.
    broken = np.zeros((64, 64), bool)
    broken[0:30, 10:18] = broken[34:64, 10:18] = broken[20:28, 30:60] = True
    np.testing.assert_array_equal(P.keep_digit_components(broken, page=False), broken)
    # A tight crop that passes for a page (its ink misses an edge): a 5 whose bar was drawn
    # apart, its body cut by the bottom edge. The bar lies close to the body: one digit.
    five = np.zeros((64, 64), bool)
    five[4:12, 16:50] = True  # the bar, clear of every edge
    five[15:40, 16:24] = five[32:40, 16:48] = five[32:64, 42:50] = True  # the body
    np.testing.assert_array_equal(P.keep_digit_components(five, page=True), five)
