"""Reading whole numbers end to end, with a small model trained on font digits."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from digitrec import artifact
from digitrec.cli import main
from digitrec.config import TrainConfig
from digitrec.errors import ConfigError, DigitrecError, ImageError, ModelFileError
from digitrec.pipeline import normalize
from digitrec.predict import classify, predict
from digitrec.read import iter_read, read
from digitrec.segment import segment
from digitrec.train import fit_arrays

from .conftest import synthetic_digits
from .test_segment import glyph, write_digits

FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")


def font_digits(n_per_digit: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-like training digits: font glyphs, turned, sized and placed at random on
    paper, through the same pipeline as a user's picture."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for index in range(10 * n_per_digit):
        digit = index % 10
        ink = glyph(str(digit), font=FONTS[index // 10 % len(FONTS)], size=48)
        picture = Image.fromarray(np.uint8(ink * 255)).rotate(
            rng.uniform(-10, 10), resample=Image.Resampling.BILINEAR, expand=True
        )
        scale = rng.uniform(0.8, 1.2)
        picture = picture.resize((round(picture.width * scale), round(picture.height * scale)))
        paper = np.zeros((picture.height + 30, picture.width + 30), np.uint8)
        top, left = rng.integers(5, 25, 2)
        paper[top : top + picture.height, left : left + picture.width] = np.asarray(picture)
        images.append(normalize(235 - np.uint8(paper * (200 / 255))))
        labels.append(digit)
    return np.stack(images), np.array(labels, np.uint8)


@pytest.fixture(scope="module")
def font_model():
    """cnn30 fitted on 1,200 font digits: reads DejaVu digits, in about 15 s."""
    images, labels = font_digits(120)
    config = TrainConfig(model="cnn30", epochs=3, validation_size=0, batch_size=32)
    return fit_arrays(config, images, labels)


@pytest.fixture(scope="module")
def font_model_path(font_model, tmp_path_factory):
    return font_model.save(tmp_path_factory.mktemp("read") / "fonts.digitrec")


def save(image: np.ndarray, path) -> str:
    Image.fromarray(image).save(path)
    return str(path)


def test_import_does_not_load_tensorflow():
    code = "import sys, digitrec.read; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "False"


def test_numbers_are_read_left_to_right(font_model, tmp_path):
    pictures = {
        "year.png": ("2024", write_digits("2024")),
        "meter.png": ("0719", write_digits("0719", font="DejaVuSans.ttf", gap=30)),
        "serif.png": ("365", write_digits("365", font="DejaVuSerif.ttf")),
    }
    for name, (_, (image, _)) in pictures.items():
        save(image, tmp_path / name)
    readings = read(font_model, sorted(str(tmp_path / name) for name in pictures))
    assert [r.text for r in readings] == [pictures[n][0] for n in sorted(pictures)]
    year = next(r for r in readings if r.source.endswith("year.png"))
    truth = pictures["year.png"][1][1]
    for digit, box in zip(year.digits, truth, strict=True):
        assert np.abs(np.subtract(digit.box, box)).max() <= 3
        assert 0 < digit.confidence <= 1
    record = year.to_dict()
    assert set(record) == {"path", "text", "digits"}
    assert set(record["digits"][0]) == {"digit", "confidence", "box"}
    assert record["digits"][0]["digit"] == 2 and len(record["digits"][0]["box"]) == 4
    json.dumps(record)
    assert year.summary().startswith("2024 (min confidence ")


def test_touching_digits_are_read(font_model):
    image, _ = write_digits("4040", gap=-3)
    [reading] = read(font_model, image)
    assert reading.text == "4040"


def test_each_digit_is_classified_once(font_model, monkeypatch):
    """The digits read while cuts were scored keep those answers: no input is sent to the
    model twice, and the answers are the ones a fresh classification gives."""
    from digitrec import read as read_module

    sent: list[bytes] = []

    def counting(model, inputs):
        sent.extend(x.tobytes() for x in inputs)
        return classify(model, inputs)

    monkeypatch.setattr(read_module, "classify", counting)
    image, _ = write_digits("4040", gap=-3)
    [reading] = read(font_model, image)
    assert reading.text == "4040" and len(sent) == len(set(sent)) > 4

    def score(inputs):
        return [math.log(max(a.confidence, 1e-6)) for a in classify(font_model, inputs)]

    digits = segment(image, score)
    fresh = classify(font_model, np.stack([digit.model_input for digit in digits]))
    assert [a.digit for a in fresh] == [d.digit for d in reading.digits]
    assert [a.confidence for a in fresh] == pytest.approx(
        [d.confidence for d in reading.digits], abs=1e-5
    )


def test_one_digit_reads_as_predict_reads_it(font_model):
    image, _ = write_digits("7")
    [reading] = read(font_model, image)
    [prediction] = predict(font_model, image)
    assert reading.text == str(prediction.digit)
    assert reading.digits[0].confidence == prediction.confidence


def test_blank_bad_and_missing_images(font_model, tmp_path):
    blank = np.full((80, 300, 3), 240, np.uint8)
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(ImageError, match="bad.png: not a supported image"):
        read(font_model, tmp_path / "bad.png")
    with pytest.raises(ImageError, match="expected a uint8"):
        read(font_model, np.zeros((20, 60), np.float32))
    number, _ = write_digits("58")
    readings = read(
        font_model,
        [blank, str(tmp_path / "bad.png"), str(tmp_path / "nothing-here"), number],
        errors="record",
    )
    assert [r.text for r in readings] == [None, None, None, "58"]
    assert readings[0].reason == "blank image: no ink found" and readings[0].error is None
    assert "not a supported image" in readings[1].error
    assert "nothing-here" in readings[2].error
    assert readings[0].summary() == "no number (blank image: no ink found)"
    assert "error" in readings[1].to_dict() and "reason" in readings[0].to_dict()
    streamed = list(iter_read(font_model, [number, blank], batch_size=1))
    assert [r.text for r in streamed] == ["58", None]
    with pytest.raises(ConfigError):
        read(font_model, number, errors="ignore")


def test_model_argument(font_model_path, tmp_path, monkeypatch):
    number, _ = write_digits("31")
    assert read(font_model_path, number)[0].text == "31"
    monkeypatch.setattr(artifact, "DEFAULT_MODEL", tmp_path / "gone.digitrec")
    with pytest.raises(ModelFileError, match="bundled model is missing"):
        read(None, number)
    images, labels = synthetic_digits(100, size=8)
    tiny = fit_arrays(
        TrainConfig(model="mlp-64-15-10", dataset="digits8x8", epochs=1, validation_size=0),
        images,
        labels,
    )
    with pytest.raises(DigitrecError, match="needs a model that takes 28x28"):
        read(tiny, number)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_read_through_the_cli(font_model_path, tmp_path, capsys, monkeypatch):
    year = save(write_digits("2024")[0], tmp_path / "year.png")
    pair = save(write_digits("58")[0], tmp_path / "pair.png")
    (tmp_path / "notes.png").write_text("not an image")
    code, out, err = run(capsys, "read", year, pair, "--model", font_model_path, "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and err == ""
    assert [(r["path"], r["text"]) for r in lines] == [(year, "2024"), (pair, "58")]
    assert all(len(d["box"]) == 4 and 0 < d["confidence"] <= 1 for d in lines[0]["digits"])

    code, out, err = run(capsys, "read", year, tmp_path / "notes.png", pair, "-m", font_model_path)
    assert code == 1
    assert err.strip() == f"digitrec: error: {tmp_path / 'notes.png'}: not a supported image"
    assert out.splitlines()[0].startswith(f"{year}: 2024 (min confidence ")
    assert out.splitlines()[1].startswith(f"{pair}: 58 ")

    monkeypatch.setattr(artifact, "DEFAULT_MODEL", tmp_path / "gone.digitrec")
    code, out, err = run(capsys, "read", year)
    assert code == 1 and out == "" and "bundled model is missing" in err
    assert len(err.strip().splitlines()) == 1
