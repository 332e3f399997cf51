import numpy as np
import pytest
from sklearn.base import clone

from digitrec import DigitClassifier, NotFittedError
from digitrec.data import load_dataset


def test_predict_before_fit_raises():
    with pytest.raises(NotFittedError):
        DigitClassifier().predict(np.zeros((1, 28, 28), np.uint8))


def test_fit_predict_score_save_load(tmp_path):
    train, test = load_dataset("digits8x8", "train"), load_dataset("digits8x8", "test")
    clf = DigitClassifier("digits8x8-mlp", epochs=30)
    assert clf.fit(train.images.reshape(1000, 64), train.labels) is clf  # flat rows work
    assert clf.score(test.images, test.labels) >= 0.85
    assert clf.predict_proba(test.images[:3]).shape == (3, 10)
    assert clone(clf).get_params() == clf.get_params()
    clf.save(tmp_path / "clf.digitrec")
    loaded = DigitClassifier.load(tmp_path / "clf.digitrec")
    np.testing.assert_array_equal(loaded.predict(test.images), clf.predict(test.images))


def test_bad_input_shapes():
    with pytest.raises(ValueError, match="square"):
        DigitClassifier().fit(np.zeros((2, 10)), [0, 1])
    with pytest.raises(ValueError, match="one label 0..9"):
        DigitClassifier().fit(np.zeros((2, 8, 8)), [0, 12])
