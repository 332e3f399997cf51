import json

import numpy as np
import pytest
from PIL import Image

from digitrec import cli, synthetic
from digitrec.errors import DataError
from digitrec.finetune import FinetuneConfig, finetune, load_labelled_folder, split_holdout


def write_user_digits(folder, per_digit=6, seed=0):
    """'My handwriting': digits in printed type, dark on white, as PNG files."""
    rng = np.random.default_rng(seed)
    for digit in range(10):
        (folder / str(digit)).mkdir(parents=True, exist_ok=True)
        for i in range(per_digit):
            Image.fromarray(synthetic.glyph(str(digit), rng)).save(folder / str(digit) / f"{i}.png")
    return folder


@pytest.fixture
def base_model(fake_data_dir, tmp_path):
    from digitrec.train import train

    path = tmp_path / "base.digitrec"
    train("dense512", output=path, data_dir=fake_data_dir, epochs=2, validation_size=100, verbose=0)
    return path


def test_split_holdout_is_per_digit_and_keeps_training_data():
    labels = np.repeat(np.arange(10), [1, 2, 5, 5, 5, 5, 5, 5, 5, 10])
    train, held = split_holdout(labels, 0.2, seed=0)
    assert set(np.unique(labels[train])) == set(range(10))  # every digit still trains
    assert len(held) == 0 + 0 + 1 * 7 + 2
    assert not set(train) & set(held)


def test_load_labelled_folder_skips_what_it_cannot_use(tmp_path):
    folder = write_user_digits(tmp_path / "mine", per_digit=1)
    Image.new("L", (50, 50), 255).save(folder / "3" / "blank.png")
    (folder / "4" / "broken.png").write_bytes(b"not a png")
    (folder / "notes").mkdir()
    images, labels, sources, skipped = load_labelled_folder(folder)
    assert images.shape == (10, 28, 28) and sorted(labels.tolist()) == list(range(10))
    assert {why.split(":")[0] for _, why in skipped} >= {"blank image"}
    assert len(skipped) == 2
    with pytest.raises(DataError, match="no usable digit images"):
        load_labelled_folder(tmp_path / "mine" / "notes")
    with pytest.raises(DataError, match="not a folder"):
        load_labelled_folder(tmp_path / "missing")


def test_the_model_to_tune_picks_the_polarity_of_a_tight_crop(tmp_path):
    from digitrec.artifact import load_model
    from tests.test_pipeline import bold_ring

    (tmp_path / "0").mkdir()
    Image.fromarray(bold_ring()).save(tmp_path / "0" / "bold.png")
    as_read = load_labelled_folder(tmp_path)[0][0]
    assert as_read[14, 14] > 128  # the pipeline alone fills the hole in
    chosen = load_labelled_folder(tmp_path, model=load_model())[0][0]
    assert chosen[14, 14] < 64 and chosen[14].max() > 128


def test_finetune_learns_the_users_digits(base_model, fake_data_dir, tmp_path):
    folder = write_user_digits(tmp_path / "mine", per_digit=8)
    output = tmp_path / "mine.digitrec"
    config = FinetuneConfig(epochs=3, steps_per_epoch=40, learning_rate=1e-3, holdout=0.25)
    tuned, report = finetune(
        folder, base_model, config=config, output=output, data_dir=fake_data_dir, verbose=False
    )
    assert report["n_holdout"] == 20 and report["n_train"] == 60
    assert report["after"]["user"] > report["before"]["user"]
    assert 0 <= report["kept_epoch"] <= 3
    drop = report["before"]["mnist_validation"] - report["after"]["mnist_validation"]
    assert drop <= 0.001 + 1e-9  # the guard: never more than 0.1 points
    from digitrec.artifact import read_metadata

    metadata = read_metadata(output)
    assert metadata["preset"].endswith("+finetune") and metadata["finetune"]["n_images"] == 80


def test_finetune_cli(base_model, fake_data_dir, tmp_path, capsys):
    folder = write_user_digits(tmp_path / "mine", per_digit=3)
    args = ["finetune", "--images", str(folder), "-m", str(base_model), "--data-dir"]
    code = cli.main(
        [*args, str(fake_data_dir), "-o", str(tmp_path / "t.digitrec"), "--json", "--epochs", "1"]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["before"]) == {"user", "mnist_validation", "mnist_test"}
    code = cli.main(
        [
            *args,
            str(fake_data_dir),
            "-o",
            str(tmp_path / "t.digitrec"),
            "--images",
            str(tmp_path / "nowhere"),
        ]
    )
    assert code == 1
    assert "not a folder" in capsys.readouterr().err
