import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from digitrec.cli import main
from digitrec.data import load_dataset


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
    assert code == 0 and "test accuracy" in out and model.exists()
    assert (tmp_path / "curves.png").exists()

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
