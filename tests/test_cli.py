import csv
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitrec.cli import main
from digitrec.data import load_dataset
from tests.test_images import MALFORMED, encode, huge_gif_header, multi_frame, png16_rgb


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_import_does_not_load_tensorflow():
    code = (
        "import sys, digitrec, digitrec.cli, digitrec.data; "
        "print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "False"


def test_train_evaluate_predict_through_the_cli(capsys, tmp_path):
    model = tmp_path / "d8.digitrec"
    code, out, _ = run(
        capsys,
        "train",
        "--preset",
        "sklearn-mlp",
        "--epochs",
        "20",
        "-o",
        model,
        "--plots",
        tmp_path,
        "-q",
    )
    assert code == 0 and "test accuracy" in out and "after 20 epochs in" in out
    assert model.exists() and (tmp_path / "curves.png").exists()
    once = tmp_path / "once.digitrec"
    code, out, _ = run(capsys, "train", "--preset", "sklearn-mlp", "--epochs", "1", "-o", once)
    assert code == 0 and "after 1 epoch in" in out

    code, out, _ = run(
        capsys, "evaluate", model, "--dataset", "digits8x8", "--json", "--plots", tmp_path / "eval"
    )
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 1
    result = json.loads(lines[0])
    assert 0.8 <= result["accuracy"] <= 1 and result["n"] == 797
    assert set(result["per_class"]) == set("0123456789")
    assert np.array(result["confusion"]).sum() == 797
    assert (tmp_path / "eval" / "confusion.png").exists()
    assert (tmp_path / "eval" / "misclassified.png").exists()

    code, out, _ = run(capsys, "evaluate", model, "--dataset", "digits8x8")
    assert code == 0 and "accuracy" in out and "precision" in out

    test = load_dataset("digits8x8", "test")
    Image.fromarray(255 - test.images[0]).resize((80, 80)).save(tmp_path / "digit.png")
    Image.new("L", (30, 30), 255).save(tmp_path / "blank.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    code, out, err = run(
        capsys,
        "predict",
        "--model",
        model,
        tmp_path / "digit.png",
        tmp_path / "broken.jpg",
        tmp_path / "blank.png",
        "--json",
        "--plot",
        tmp_path / "pred.png",
    )
    answers = [json.loads(line) for line in out.strip().splitlines()]
    assert code == 1  # one image could not be read, but the others were answered
    assert [a["path"].rsplit("/", 1)[-1] for a in answers] == [
        "digit.png",
        "broken.jpg",
        "blank.png",
    ]
    assert answers[0]["digit"] == test.labels[0] and len(answers[0]["probabilities"]) == 10
    assert answers[1]["digit"] is None and "error" in answers[1]
    assert answers[2]["digit"] is None and "blank" in answers[2]["reason"]
    assert "broken.jpg" in err and (tmp_path / "pred.png").exists()

    code, out, _ = run(capsys, "info", model)
    assert code == 0 and json.loads(out)["preset"] == "sklearn-mlp"


def test_explain_writes_every_stage_for_28x28_models(
    capsys, tmp_path, fake_data_dir, digits_model_path
):
    model = tmp_path / "tiny.digitrec"
    assert (
        run(
            capsys,
            "train",
            "--preset",
            "dense512",
            "--epochs",
            "1",
            "--data-dir",
            fake_data_dir,
            "-o",
            model,
            "-q",
        )[0]
        == 0
    )
    Image.new("L", (60, 60), 255).save(tmp_path / "blank.png")
    drawn = Image.new("RGB", (60, 60), (250, 250, 250))
    drawn.paste((20, 20, 20), (27, 8, 33, 52))
    drawn.save(tmp_path / "digit.png")
    code, out, err = run(
        capsys,
        "predict",
        "-m",
        model,
        tmp_path / "digit.png",
        tmp_path / "blank.png",
        "--explain",
        tmp_path / "explain",
    )
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "explain").iterdir()) == [
        "blank-explain.png",
        "digit-explain.png",
    ]
    code, out, err = run(
        capsys,
        "predict",
        "-m",
        digits_model_path,
        tmp_path / "digit.png",
        "--explain",
        tmp_path / "explain8",
    )
    assert code == 1 and "--explain shows the 28x28 pipeline" in err
    assert not (tmp_path / "explain8").exists()


def test_show_and_presets(capsys, tmp_path):
    code, out, _ = run(capsys, "show", "digits8x8", "-n", "16", "-o", tmp_path / "grid.png")
    assert code == 0 and (tmp_path / "grid.png").exists()
    code, out, _ = run(capsys, "presets")
    assert code == 0 and "keras-docs-cnn" in out and "batch_size=128" in out


def test_help_speaks_to_users(capsys):
    with pytest.raises(SystemExit) as exit_:
        run(capsys, "--help")
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "digitrec predict IMAGE" in out and "``" not in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate", "{tmp}/missing.digitrec", "--dataset", "mnist"], "no such model file"),
        (["evaluate", "{tmp}/notamodel.png", "--dataset", "mnist"], "not a digitrec model file"),
        (["predict", "--model", "{tmp}/notamodel.png", "x.png"], "not a digitrec model file"),
        (["train", "--preset", "dense512", "--data-dir", "{tmp}/empty"], "every mirror failed"),
        (["train", "--preset", "cnn30", "--epochs", "0"], "epochs must be >= 1"),
        (["show", "usps", "--data-dir", "{tmp}"], "not downloadable"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(capsys, tmp_path, monkeypatch, argv, message):
    from digitrec import data

    spec = data.IDX_DATASETS["mnist"]
    monkeypatch.setitem(
        data.IDX_DATASETS, "mnist", dataclasses.replace(spec, mirrors=("http://127.0.0.1:9/",))
    )
    (tmp_path / "notamodel.png").write_bytes(b"\x89PNG")
    code, out, err = run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert code == 1
    assert message in err and len(err.strip().splitlines()) == 1
    assert err.startswith("digitrec: error:") and "Traceback" not in err


@pytest.mark.parametrize(
    "argv", [["train", "--preset", "lenet"], ["evaluate", "m.digitrec", "--dataset", "kmnist"], []]
)
def test_usage_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err or argv == []


def test_no_framework_banners_on_stderr(digits_model_path, tmp_path):
    from PIL import Image

    Image.new("L", (20, 20), 255).save(tmp_path / "blank.png")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "digitrec.cli",
            "predict",
            "-m",
            digits_model_path,
            tmp_path / "blank.png",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "no digit" in result.stdout
    assert result.stderr == ""


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "digitrec.cli", "predict", "--model", "nope.digitrec", "x.png"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "digitrec: error: nope.digitrec: no such model file"


def paper_digits(folder, count: int) -> list[int]:
    """``count`` 8x8 test digits saved as dark-on-white PNGs ``00.png`` ...; their labels."""
    test = load_dataset("digits8x8", "test")
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        picture = Image.fromarray(255 - test.images[index]).resize((64, 64))
        picture.save(folder / f"{index:02d}.png")
    return [int(label) for label in test.labels[:count]]


def test_predict_globs_to_csv_file_with_progress(capsys, tmp_path, digits_model_path):
    labels = paper_digits(tmp_path / "scans", 25)
    (tmp_path / "scans" / "notes.txt").write_text("not an image")
    output = tmp_path / "answers.csv"
    code, out, err = run(
        capsys,
        "predict",
        "-m",
        digits_model_path,
        f"{tmp_path}/scans/*.png",
        "--format",
        "csv",
        "-o",
        output,
        "--progress",
    )
    assert code == 0 and out == ""
    assert "25/25 images" in err and "ETA" in err
    rows = list(csv.DictReader(output.open()))
    assert list(rows[0]) == ["path", "digit", "confidence", "reason", "error"] + [
        f"p{i}" for i in range(10)
    ]
    assert [Path(row["path"]).name for row in rows] == [f"{i:02d}.png" for i in range(25)]
    assert sum(int(row["digit"]) == label for row, label in zip(rows, labels, strict=True)) >= 20
    assert (
        rows[0]["error"] == "" and abs(sum(float(rows[0][f"p{i}"]) for i in range(10)) - 1) < 1e-3
    )

    code, out, err = run(
        capsys, "predict", "-m", digits_model_path, tmp_path / "scans", "--json", "-q", "--progress"
    )
    assert code == 0 and err == "" and len(out.splitlines()) == 25
    assert json.loads(out.splitlines()[0])["path"].endswith("00.png")

    code, out, err = run(
        capsys, "predict", "-m", digits_model_path, f"{tmp_path}/**/0[0-2].png", "-o", output
    )
    assert code == 0 and out == "" and err == ""  # not a terminal: no bar unless asked
    assert [line.split(":")[0] for line in output.read_text().splitlines()] == [
        str(tmp_path / "scans" / f"0{i}.png") for i in range(3)
    ]


def test_interrupted_batch_keeps_the_answers_already_written(
    capsys, tmp_path, digits_model_path, monkeypatch
):
    from digitrec.progress import Progress

    paper_digits(tmp_path / "scans", 5)
    updates = []

    def interrupt_third(self, count=1):
        updates.append(count)
        if len(updates) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(Progress, "update", interrupt_third)
    output = tmp_path / "answers.jsonl"
    code, out, err = run(
        capsys, "predict", "-m", digits_model_path, tmp_path / "scans", "--json", "-o", output
    )
    assert code == 130 and err == "digitrec: interrupted\n"
    assert [json.loads(line)["path"][-6:] for line in output.read_text().splitlines()] == [
        "00.png",
        "01.png",
        "02.png",
    ]


@pytest.mark.parametrize(
    "target, message",
    [
        ("{tmp}", "is a folder; --output takes a file name"),
        ("{tmp}/missing/answers.csv", "folder {tmp}/missing does not exist"),
    ],
)
def test_unwritable_output_is_refused_before_any_work(capsys, tmp_path, target, message):
    # The model does not exist either: the output is checked first, before anything is read.
    code, out, err = run(
        capsys,
        "predict",
        "-m",
        tmp_path / "nope.digitrec",
        "x.png",
        "-o",
        target.format(tmp=tmp_path),
    )
    assert code == 1 and out == "" and message.format(tmp=tmp_path) in err
    assert err.startswith("digitrec: error:") and len(err.splitlines()) == 1


def test_model_is_optional_and_the_bundled_one_is_used(capsys, tmp_path, monkeypatch):
    from digitrec import artifact

    monkeypatch.setattr(artifact, "DEFAULT_MODEL", tmp_path / "assets" / "default.digitrec")
    for argv in (["predict", "x.png"], ["evaluate", "--dataset", "digits8x8"]):
        code, out, err = run(capsys, *argv)
        assert code == 1 and out == ""
        assert err.startswith("digitrec: error: the bundled model is missing")
        assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_evaluate_takes_the_model_as_option_or_positional(capsys, digits_model_path):
    code, out, _ = run(
        capsys, "evaluate", "--model", digits_model_path, "--dataset", "digits8x8", "--json"
    )
    result = json.loads(out)
    assert code == 0 and result["model"] == str(digits_model_path) and result["n"] == 797
    code, out, err = run(capsys, "evaluate", digits_model_path, "-m", digits_model_path)
    assert code == 1 and "give the model once" in err


def hostile_batch(folder) -> tuple[list, list[str]]:
    """A folder of files that must be read, files that must each fail, and other arguments
    that must each fail; returns (arguments, names that must fail)."""
    readable = folder / "readable"
    paper_digits(readable, 1)
    Image.new("L", (1, 1), 0).save(readable / "one-pixel.png")
    grey = np.asarray(Image.open(readable / "00.png").convert("L"))
    Image.fromarray(grey.astype(np.uint16) * 257).save(readable / "grey16.png")
    (readable / "rgb16.png").write_bytes(png16_rgb(grey))
    (readable / "cmyk.jpg").write_bytes(
        encode(Image.open(readable / "00.png").convert("CMYK"), "JPEG")
    )
    (readable / "animated.gif").write_bytes(multi_frame("GIF"))
    (readable / "pages.tif").write_bytes(multi_frame("TIFF"))
    broken = folder / "broken"
    broken.mkdir()
    for name, (data, _) in MALFORMED.items():
        (broken / name).write_bytes(data)
    (broken / "huge.gif").write_bytes(huge_gif_header(20000, 20000))
    (folder / "dir.png").mkdir()
    (folder / "empty").mkdir()
    (folder / "loop.png").symlink_to(folder / "loop.png")
    os.mkfifo(folder / "pipe.png")
    others = ["dir.png", "empty", "loop.png", "pipe.png", "*.webp", "missing.png"]
    arguments = [readable, broken, *(folder / name for name in others)]
    return arguments, [*MALFORMED, "huge.gif", *others]


def test_hostile_batch_fails_file_by_file(capsys, tmp_path, digits_model_path):
    arguments, failing = hostile_batch(tmp_path)
    start = time.perf_counter()
    code, out, err = run(capsys, "predict", "-m", digits_model_path, *arguments, "--json")
    assert time.perf_counter() - start < 30
    answers = {Path(a["path"]).name: a for a in map(json.loads, out.splitlines())}
    assert code == 1
    assert sorted(name for name, a in answers.items() if "error" in a) == sorted(failing)
    read = [
        "00.png",
        "one-pixel.png",
        "grey16.png",
        "rgb16.png",
        "cmyk.jpg",
        "animated.gif",
        "pages.tif",
    ]
    assert sorted(name for name, a in answers.items() if "error" not in a) == sorted(read)
    assert (
        answers["00.png"]["digit"] == answers["cmyk.jpg"]["digit"] == answers["rgb16.png"]["digit"]
    )
    lines = err.splitlines()
    assert len(lines) == len(failing) and "Traceback" not in err and "Warning" not in err
    failed_in_order = [Path(a["path"]).name for a in answers.values() if "error" in a]
    for line, name in zip(lines, failed_in_order, strict=True):
        assert line.startswith("digitrec: error: ") and name in line
    assert (
        "too large" in answers["huge.png"]["error"] and "too large" in answers["huge.gif"]["error"]
    )
