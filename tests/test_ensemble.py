"""Ensembles: trained member by member, kept on disk, combined into one checked model."""

import numpy as np
import pytest

from digitrec import ensemble as ensemble_module
from digitrec.artifact import load_model, read_metadata
from digitrec.cli import main
from digitrec.ensemble import member_path
from digitrec.errors import ConfigError
from digitrec.models import ensemble
from digitrec.runtime import OnnxNetwork
from digitrec.train import train

from .test_export import _randomised

SMALL = dict(epochs=1, batch_size=64, validation_size=100, verbose=0)


def test_ensemble_onnx_is_the_mean_of_its_networks():
    from digitrec.export import to_onnx_bytes

    networks = [_randomised("fast-cnn", 28), _randomised("cnn30", 28)]
    combined = ensemble(networks)
    inputs = np.random.default_rng(3).random((16, 28, 28, 1), dtype=np.float32)
    mean = np.mean([network.predict(inputs, verbose=0) for network in networks], axis=0)
    np.testing.assert_allclose(combined.predict(inputs, verbose=0), mean, atol=1e-6)
    got = OnnxNetwork(to_onnx_bytes(combined)).predict(inputs)
    assert np.abs(got - mean).max() <= 1e-4


def test_train_ensemble_saves_members_scores_each_and_reuses_them(
    fake_data_dir, tmp_path, monkeypatch
):
    output = tmp_path / "e.digitrec"
    model = train("fast", output=output, data_dir=fake_data_dir, ensemble=2, **SMALL)
    metadata = read_metadata(output)
    assert metadata["config"]["ensemble"] == 2 and metadata["config"]["seed"] == 0
    members = metadata["ensemble"]["members"]
    assert [m["config"]["seed"] for m in members] == [0, 1]
    assert all(m["metrics"]["test"]["n"] == 200 for m in members)
    assert metadata["metrics"]["test"]["accuracy"] == model.metadata["metrics"]["test"]["accuracy"]
    assert metadata["calibration"]["temperature"] > 0
    for index in range(2):
        member = read_metadata(member_path(output, index))
        assert member["complete"] and member["data"]["validation_seed"] == 0
        assert member["metrics"]["test"] == members[index]["metrics"]["test"]
    # The file's ONNX network answers as its Keras ensemble does.
    loaded, keras_loaded = load_model(output), load_model(output, runtime="keras")
    images = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    assert loaded.runtime == "onnx"
    np.testing.assert_allclose(
        loaded.predict_outputs(images), keras_loaded.predict_outputs(images), atol=1e-4
    )

    def no_training(*args, **kwargs):
        raise AssertionError("a finished member was trained again")

    assert all(len(m["history"]["loss"]) == 1 for m in members)
    monkeypatch.setattr("digitrec.train.fit_arrays", no_training)
    again = train("fast", output=output, data_dir=fake_data_dir, ensemble=2, **SMALL)
    assert again.metadata["ensemble"]["members"][1]["metrics"] == members[1]["metrics"]


def test_a_changed_recipe_trains_its_members_again(fake_data_dir, tmp_path):
    output = tmp_path / "e.digitrec"
    train("fast", output=output, data_dir=fake_data_dir, ensemble=2, **SMALL)
    before = member_path(output, 1).stat().st_mtime_ns
    train("fast", output=output, data_dir=fake_data_dir, ensemble=2, **{**SMALL, "epochs": 2})
    assert read_metadata(member_path(output, 1))["config"]["epochs"] == 2
    assert member_path(output, 1).stat().st_mtime_ns != before


def test_members_need_one_validation_split(fake_data_dir, tmp_path, capsys):
    first, second = tmp_path / "a.digitrec", tmp_path / "b.digitrec"
    train("fast", output=first, data_dir=fake_data_dir, seed=0, **SMALL)
    train("fast", output=second, data_dir=fake_data_dir, seed=1, **SMALL)
    code = main(
        [
            "ensemble",
            str(first),
            str(second),
            "-o",
            str(tmp_path / "e.digitrec"),
            "--data-dir",
            str(fake_data_dir),
        ]
    )
    assert code == 1 and "different parts of the training set" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="at least two"):
        ensemble_module.combine([load_model(first)], np.zeros((1, 28, 28)), np.zeros(1))


def test_cli_ensemble_of_files_with_test_time_forms(fake_data_dir, tmp_path, capsys):
    first, second = tmp_path / "a.digitrec", tmp_path / "b.digitrec"
    train("fast", output=first, data_dir=fake_data_dir, **SMALL)
    train("fast", output=second, data_dir=fake_data_dir, **{**SMALL, "learning_rate": 0.002})
    output = tmp_path / "e.digitrec"
    code = main(
        [
            "ensemble",
            str(first),
            str(second),
            "-o",
            str(output),
            "--tta",
            "--data-dir",
            str(fake_data_dir),
        ]
    )
    assert code == 0 and "ensemble of 2: test accuracy" in capsys.readouterr().out
    code = main(
        [
            "train",
            "--preset",
            "fast",
            "--ensemble",
            "2",
            "--epochs",
            "1",
            "--validation-size",
            "100",
            "-q",
            "-o",
            str(tmp_path / "t.digitrec"),
            "--plots",
            str(tmp_path / "plots"),
            "--data-dir",
            str(fake_data_dir),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "of 2 networks (alone: " in out
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "curves-member-0.png",
        "curves-member-1.png",
    ]
    model = load_model(output)
    assert model.tta and model.config.tta and model.config.ensemble == 2
    assert main(["evaluate", str(output), "--data-dir", str(fake_data_dir), "--no-tta"]) == 0
