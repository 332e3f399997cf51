import dataclasses
import gzip

import numpy as np
import pytest

from digitrec import data
from digitrec.data import load_dataset
from digitrec.errors import ConfigError, DataError
from digitrec.idx import encode_idx

from .conftest import write_fake_mnist


def test_loads_from_data_dir(fake_data_dir):
    train = load_dataset("mnist", "train", data_dir=fake_data_dir)
    assert train.images.shape == (600, 28, 28) and train.images.dtype == np.uint8
    assert train.labels.shape == (600,) and train.labels.dtype == np.uint8
    assert set(train.sha256) == {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"}
    assert load_dataset("mnist", "test", data_dir=fake_data_dir).images.shape[0] == 200


def test_environment_variable_is_the_data_dir(fake_data_dir, monkeypatch):
    monkeypatch.setenv("DIGITREC_DATA", str(fake_data_dir))
    assert len(load_dataset("mnist", "test").labels) == 200


def test_cache_is_searched_after_the_data_dir(tmp_path, monkeypatch):
    write_fake_mnist(data.cache_dir(), monkeypatch)
    assert len(load_dataset("mnist", "test", data_dir=tmp_path / "empty").labels) == 200


def test_checksum_mismatch_names_the_file_and_the_fix(fake_data_dir):
    path = fake_data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(encode_idx(np.ones(200, np.uint8))))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: checksum mismatch.*delete"):
        load_dataset("mnist", "test", data_dir=fake_data_dir)


def test_truncated_file_is_an_error(fake_data_dir):
    path = fake_data_dir / "mnist" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz"):
        load_dataset("mnist", "test", data_dir=fake_data_dir)


def test_download_verifies_and_renames_atomically(http_server, tmp_path, monkeypatch):
    base_url, www = http_server
    source = write_fake_mnist(tmp_path / "source", monkeypatch)
    for path in (source / "mnist").iterdir():
        (www / path.name).write_bytes(path.read_bytes())
    spec = data.IDX_DATASETS["mnist"]
    monkeypatch.setitem(
        data.IDX_DATASETS,
        "mnist",
        dataclasses.replace(spec, mirrors=(base_url + "missing/", base_url)),
    )
    test = load_dataset("mnist", "test", data_dir=tmp_path / "nowhere")
    assert len(test.labels) == 200
    cached = sorted(p.name for p in (data.cache_dir() / "mnist").iterdir())
    assert cached == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_corrupt_download_is_rejected_and_not_kept(http_server, tmp_path, monkeypatch):
    base_url, www = http_server
    write_fake_mnist(tmp_path / "source", monkeypatch)
    for name in data.IDX_DATASETS["mnist"].files["test"]:
        (www / name).write_bytes(gzip.compress(encode_idx(np.zeros(3, np.uint8))))
    spec = data.IDX_DATASETS["mnist"]
    monkeypatch.setitem(data.IDX_DATASETS, "mnist", dataclasses.replace(spec, mirrors=(base_url,)))
    with pytest.raises(DataError, match=r"every mirror failed.*checksum mismatch.*--data-dir"):
        load_dataset("mnist", "test")
    assert list((data.cache_dir() / "mnist").iterdir()) == []  # no partial files left


def test_no_download_when_disabled(tmp_path):
    with pytest.raises(DataError, match="downloading is off"):
        load_dataset("mnist", "test", data_dir=tmp_path, download=False)


def test_cross_sets_are_test_only_and_not_downloadable(tmp_path):
    with pytest.raises(ConfigError, match="no 'train' split"):
        load_dataset("usps", "train")
    with pytest.raises(DataError, match="not downloadable.*--data-dir"):
        load_dataset("usps", "test", data_dir=tmp_path)


def test_unknown_dataset():
    with pytest.raises(ConfigError, match="unknown dataset 'kmnist'.*mnist"):
        load_dataset("kmnist")


def test_digits8x8_tutorial_split():
    train, test = load_dataset("digits8x8", "train"), load_dataset("digits8x8", "test")
    assert train.images.shape == (1000, 8, 8) and test.images.shape == (797, 8, 8)
    assert train.images.dtype == np.uint8 and train.images.max() == 255
    assert data.class_names("digits8x8") == tuple("0123456789")


def test_real_datasets_match_the_contract(real_data_dir):
    expected = {
        ("mnist", "train"): (60000, 28, 28),
        ("mnist", "test"): (10000, 28, 28),
        ("fashion-mnist", "test"): (10000, 28, 28),
        ("usps", "test"): (9298, 16, 16),
        ("semeion", "test"): (1593, 16, 16),
        ("optdigits", "test"): (4677, 32, 32),
    }
    for (name, split), shape in expected.items():
        dataset = load_dataset(name, split, data_dir=real_data_dir)
        assert dataset.images.shape == shape and dataset.labels.max() == 9
    assert data.class_names("fashion-mnist")[9] == "Ankle boot"
