import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitrec import pipeline
from digitrec.calibrate import Calibration
from digitrec.data import load_dataset
from digitrec.errors import ImageError
from digitrec.images import load_image as load
from digitrec.predict import (
    Prediction,
    best_readings,
    choose_readings,
    csv_header,
    iter_predict,
    list_sources,
    predict,
    side_by_side,
)
from digitrec.preprocess import Reading
from tests.test_pipeline import bold_ring, stretched_one
from tests.test_segment import write_digits


def paper_photo(image8: np.ndarray, path) -> None:
    """An 8x8 test digit as a user would have it: dark ink on white paper, RGB, larger."""
    picture = Image.fromarray(255 - image8).resize((64, 64), Image.Resampling.NEAREST)
    picture.convert("RGB").save(path)


def test_user_images_are_read(digits_model, tmp_path):
    test = load_dataset("digits8x8", "test")
    for index in range(30):
        paper_photo(test.images[index], tmp_path / f"{index:02d}_{test.labels[index]}.png")
    predictions = predict(digits_model, tmp_path)
    assert len(predictions) == 30
    correct = sum(p.digit == int(p.source[-5]) for p in predictions)
    assert correct >= 25
    first = predictions[0].to_dict()
    assert set(first) == {"path", "digit", "confidence", "probabilities"}
    assert len(first["probabilities"]) == 10 and abs(sum(first["probabilities"]) - 1) < 1e-4
    assert first["confidence"] == max(first["probabilities"])
    json.dumps(first)


def test_arrays_and_blank_images(digits_model):
    test = load_dataset("digits8x8", "test")
    blank = np.full((50, 50, 3), 240, np.uint8)
    digit, empty = predict(digits_model, [test.images[0], blank])
    assert digit.digit == test.labels[0]
    assert empty.digit is None and empty.confidence is None and "blank" in empty.reason


def test_bad_images_raise_or_are_recorded(digits_model, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(ImageError, match="bad.png: not a supported image"):
        predict(digits_model, tmp_path / "bad.png")
    [recorded] = predict(digits_model, [str(tmp_path / "bad.png")], errors="record")
    assert recorded.digit is None and "not a supported image" in recorded.error
    with pytest.raises(ImageError, match="expected a uint8"):
        predict(digits_model, np.zeros((8, 8), np.float32))


def test_iter_predict_streams_in_order_across_batches(digits_model, tmp_path, monkeypatch):
    test = load_dataset("digits8x8", "test")
    for index in range(5):
        paper_photo(test.images[index], tmp_path / f"{index}.png")
    (tmp_path / "bad.png").write_bytes(b"garbage")
    (tmp_path / "empty").mkdir()
    images = [
        str(tmp_path / "0.png"),
        test.images[5],
        str(tmp_path / "empty"),  # names no image: one failed answer, in its place
        str(tmp_path / "[34].png"),  # a glob pattern: 3.png, 4.png
        str(tmp_path / "bad.png"),
        str(tmp_path / "*.gif"),
        str(tmp_path / "1.png"),
    ]
    read = []
    monkeypatch.setattr("digitrec.predict.load_image", lambda path: read.append(path) or load(path))
    stream = iter_predict(digits_model, images, errors="record", batch_size=2)
    first = next(stream)
    assert len(read) == 1  # the first answer came after one batch: 0.png and the array
    streamed = [first, *stream]
    assert [Path(p.source).name for p in streamed] == [
        "0.png",
        "<array 1>",
        "empty",
        "3.png",
        "4.png",
        "bad.png",
        "*.gif",
        "1.png",
    ]
    assert "holds no images" in streamed[2].error and "no file matches" in streamed[6].error
    assert "not a supported image" in streamed[5].error
    assert [p.digit for p in streamed] == [
        p.digit for p in predict(digits_model, images, errors="record")
    ]
    assert streamed[1].digit == test.labels[5] and all(p.picture is None for p in streamed)
    with pytest.raises(ImageError, match="empty: folder holds no images"):
        predict(digits_model, images)


def test_list_sources_counts_without_reading(tmp_path):
    (tmp_path / "a.png").write_bytes(b"not read yet")
    sources = list_sources([str(tmp_path), "missing.png", str(tmp_path / "*.jpg")], errors="record")
    assert sources[:2] == [str(tmp_path / "a.png"), "missing.png"]
    assert isinstance(sources[2], Prediction) and "no file matches" in sources[2].error


def test_csv_rows():
    answered = Prediction("a.png", digit=3, confidence=0.9, probabilities=[0.1] * 10)
    failed = Prediction("b.png", error="b.png: empty file")
    assert csv_header()[:6] == ["path", "digit", "confidence", "reason", "error", "p0"]
    assert len(csv_header()) == len(answered.to_row()) == len(failed.to_row()) == 15
    assert failed.to_row()[:5] == ["b.png", None, None, None, "b.png: empty file"]


class _Scores:
    """A stand-in model that scores an input by its mean brightness: brighter reads as a
    surer 7, an input of all 255 as surely "not a digit", and of all 254 as a sure 7."""

    def scores(self, inputs):
        level = inputs.reshape(len(inputs), -1).mean(axis=1) / 255
        digits = np.zeros((len(inputs), 10))
        digits[:, 7] = np.where(level < 1, np.where(level > 0.996, 0.995, level), 0.01)
        return digits, np.where(level < 1, 0.0, 0.99)


def test_the_model_picks_the_more_legible_reading():
    dim, bright, sure, full = (np.full((1, 28, 28), v, np.uint8) for v in (50, 200, 254, 255))
    first = np.concatenate([dim, bright, full, full])
    second = np.concatenate([bright, dim, bright, sure])
    # The surer digit wins, unless the first reading is surely not a digit and the
    # second not surely a digit.
    readings = {i: [Reading(first[i], True), Reading(second[i], False)] for i in range(4)}
    assert best_readings(_Scores(), readings) == {0: 1, 1: 0, 2: 0, 3: 1}
    assert best_readings(_Scores(), {}) == {}
    # Of several polarities, the surest digit is kept, in turn: a sure "not a digit"
    # first gives way only to a sure digit, and then the surest of the rest wins.
    grey = [Reading(np.full((28, 28), v, np.uint8), False) for v in (100, 254, 150)]
    assert best_readings(_Scores(), {0: [Reading(dim[0], True), *grey]}) == {0: 2}
    assert best_readings(_Scores(), {0: [Reading(full[0], True), *grey]}) == {0: 2}
    assert best_readings(_Scores(), {0: [Reading(full[0], True), grey[0], grey[2]]}) == {0: 0}
    chosen = choose_readings(_Scores(), first, {3: readings[3], 1: readings[1]})
    np.testing.assert_array_equal(chosen, np.concatenate([dim, bright, full, sure]))


class _Votes:
    """A stand-in model whose digit probabilities are the input's first ten pixels, and
    P(not a digit) what they leave of one."""

    def scores(self, inputs):
        digits = inputs.reshape(len(inputs), -1)[:, :10] / 100
        return digits, 1 - digits.sum(axis=1)


def _votes(*probabilities):
    image = np.zeros((28, 28), np.uint8)
    image.flat[:10] = probabilities
    return image


def test_readings_at_several_widths_vote():
    # A stretched 1: a sure 7 at full width, a 1 when narrowed. The votes (7: 0.9 + 0.3
    # + 0.2, 1: 0.1 + 0.6 + 0.7) make it a 1, read where the 1 is surest.
    stretched_one = [
        Reading(_votes(0, 10, 0, 0, 0, 0, 0, 90), True),
        Reading(_votes(0, 60, 0, 0, 0, 0, 0, 30), True, 0.8),
        Reading(_votes(0, 70, 0, 0, 0, 0, 0, 20), True, 0.5),
    ]
    assert best_readings(_Votes(), {0: stretched_one}) == {0: 2}
    # Only the readings of the chosen polarity vote: here the other one's, at full width.
    other = [Reading(_votes(0, 0, 0, 95), False), Reading(_votes(0, 0, 0, 50, 0, 40), False, 0.8)]
    assert best_readings(_Votes(), {0: stretched_one + other}) == {0: 3}
    assert best_readings(_Votes(), {0: stretched_one[:1] + other[1:]}) == {0: 0}
    # Noise fills its frame too. Where "not a digit" wins the vote (0.8 + 0.9 + 0.3), the
    # full-width reading stays, though one narrowed reading passes for an 8.
    noise = [
        Reading(_votes(0, 0, 0, 0, 0, 0, 0, 0, 20), True),
        Reading(_votes(0, 0, 0, 0, 0, 0, 0, 0, 10), True, 0.8),
        Reading(_votes(0, 0, 0, 0, 0, 0, 0, 0, 70), True, 0.5),
    ]
    assert best_readings(_Votes(), {0: noise}) == {0: 0}


class _NarrowOnes:
    """A stand-in model that reads narrow ink as a 1 and wide ink as a 7."""

    input_size = (28, 28)
    calibration = Calibration()

    def scores(self, inputs):
        columns = (inputs > 64).any(axis=1).sum(axis=1)
        digits = np.zeros((len(inputs), 10))
        digits[:, 1] = np.clip((22 - columns) / 10, 0, 1)
        digits[:, 7] = 1 - digits[:, 1]
        return digits, np.zeros(len(inputs))


def test_a_digit_stretched_to_fill_its_box_is_read_narrowed(monkeypatch):
    # Read at full width (21 columns of ink) the stretched 1 is a 7 at 90%; narrowed to
    # 0.8, 0.65 and 0.5 of its width, a 1 at 60, 80 and 100%. The vote says 1.
    (answer,) = predict(_NarrowOnes(), stretched_one())
    assert (answer.digit, answer.confidence, answer.width) == (1, 1.0, 0.5)
    assert answer.ink_dark and answer.readings == []
    monkeypatch.setattr(pipeline, "NARROWER", ())
    (answer,) = predict(_NarrowOnes(), stretched_one())
    assert (answer.digit, answer.width) == (7, 1.0)


def test_a_bold_digit_cropped_tight_is_read_with_the_right_polarity(tmp_path):
    from digitrec.artifact import load_model

    ring = bold_ring()
    Image.fromarray(ring).save(tmp_path / "zero.png")
    Image.fromarray(255 - ring).save(tmp_path / "zero-dark.png")
    for answer in predict(load_model(), tmp_path):
        assert answer.digit == 0, answer
        assert answer.ink_dark == answer.source.endswith("dark.png")
        assert answer.readings == []


def test_side_by_side_sees_neighbours_kept_with_a_digit():
    bars = np.zeros((28, 28), np.uint8)
    bars[4:24, 6:9] = 255
    assert not side_by_side(bars)  # one digit
    bars[4:24, 16:20] = 255
    assert side_by_side(bars)  # two, with paper between
    bars[4:24, 9:16] = 90
    assert not side_by_side(bars)  # joined: one piece of ink
    dot = np.zeros((28, 28), np.uint8)
    dot[4:24, 6:9] = dot[20:23, 16:19] = 255
    assert not side_by_side(dot)  # a digit and a mark beside it


class _SureFours:
    """A stand-in model that reads anything as a 4, 99% sure."""

    input_size = (28, 28)
    calibration = Calibration()

    def scores(self, inputs):
        digits = np.full((len(inputs), 10), 0.001)
        digits[:, 4] = 0.991
        return digits, np.zeros(len(inputs))


def test_a_number_is_not_read_as_one_digit():
    one, _ = write_digits("3")
    number, _ = write_digits("307", gap=30)
    single, several = predict(_SureFours(), [one, number])
    assert single.digit == 4 and single.reason is None
    # A sure 4 for the whole row, as a model may say of digits squeezed into one box: the
    # model input shows them side by side, so the row is read as a number instead.
    assert several.digit is None and several.number == "444" and single.number is None
    assert (
        several.reason
        == '3 digits in a row, not one: read as a number (digitrec read), it says "444"'
    )
    assert several.to_dict()["number"] == "444" and "number" not in single.to_dict()


def test_a_refused_number_says_what_it_reads():
    from digitrec.artifact import load_model

    picture = load("examples/number-307.png")
    [answer] = predict(load_model(), picture)
    assert answer.digit is None and answer.reason.endswith('it says "307"')
    assert answer.number == "307"
    [seven] = predict(load_model(), load("examples/seven.png"))
    assert seven.digit == 7 and seven.reason is None
