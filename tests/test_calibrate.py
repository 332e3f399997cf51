import numpy as np
import pytest

from digitrec import calibrate
from digitrec.calibrate import Calibration


def overconfident(n=4000, seed=0):
    """Outputs that say 99% but are right 80% of the time."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    guess = np.where(rng.uniform(size=n) < 0.8, labels, (labels + 1) % 10)
    outputs = np.full((n, 10), 0.01 / 9)
    outputs[np.arange(n), guess] = 0.99
    return outputs, labels


def test_temperature_scaling_fixes_overconfidence():
    outputs, labels = overconfident()
    temperature = calibrate.fit_temperature(outputs, labels)
    assert temperature > 1
    calibrated = calibrate.apply_temperature(outputs, temperature)
    assert calibrated.max(axis=1).mean() == pytest.approx(0.8, abs=0.02)
    correct = outputs.argmax(1) == labels
    before = calibrate.expected_calibration_error(outputs.max(1), correct)
    after = calibrate.expected_calibration_error(calibrated.max(1), correct)
    assert before > 0.15 and after < 0.02
    np.testing.assert_array_equal(calibrated.argmax(1), outputs.argmax(1))  # same answers


def test_ece_of_a_perfectly_calibrated_model_is_small():
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.1, 1, 20000)
    correct = rng.uniform(size=20000) < confidence
    assert calibrate.expected_calibration_error(confidence, correct) < 0.02
    assert calibrate.expected_calibration_error(np.array([]), np.array([])) == 0.0


def test_threshold_refuses_the_stated_share():
    best = np.linspace(0.2, 1.0, 1001)
    threshold = calibrate.choose_threshold(best, 0.01)
    assert np.mean(best < threshold) <= 0.01 and threshold > 0.2


def test_reject_output_and_threshold_refuse():
    calibration = Calibration(temperature=1.0, threshold=0.5, reject=True)
    outputs = np.array(
        [
            [0.9] + [0.01] * 9 + [0.01],  # a clear 0
            [0.05] * 10 + [0.5],  # not a digit
            [0.3, 0.3] + [0.04] * 8 + [0.08],  # unsure
        ]
    )
    outputs /= outputs.sum(axis=1, keepdims=True)
    digits, not_digit = calibration.scores(outputs, 10)
    assert digits.shape == (3, 10) and not_digit.shape == (3,)
    np.testing.assert_allclose(digits.sum(1) + not_digit, 1, atol=1e-6)
    assert calibration.refused(digits, not_digit).tolist() == [False, True, True]


def test_fit_reports_and_round_trips():
    outputs, labels = overconfident(2000)
    outputs = np.hstack([outputs * 0.98, np.full((len(outputs), 1), 0.02)])
    labels = labels.copy()
    labels[:200] = 10
    outputs[:200, 10] = 0.9
    calibration, report = calibrate.fit(outputs, labels, 10, reject=True)
    assert report["refused_digits"] <= calibrate.MAX_REFUSED + 1e-9
    assert report["refused_non_digits"] > 0.9
    assert Calibration.from_dict(calibration.to_dict()) == calibration
    assert Calibration.from_dict(None) == Calibration()
