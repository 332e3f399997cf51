"""Honest confidence: temperature scaling, calibration error, and when to refuse.

A softmax's top probability is not the chance of being right: augmented, dropout-
regularised networks are usually under-confident on clean digits and over-confident on
odd ones. One temperature, fitted on held-out validation data (never the test set),
rescales the logits so that "90%" means right about nine times in ten; the expected
calibration error (ECE) measures how far that holds.

A reading is refused (``digit: null``) when the model's "not a digit" output beats every
digit, or when the best digit's calibrated probability is below a threshold chosen on
validation digits so that only a small, stated share of real digits is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_REFUSED = 0.01  # share of validation digits the threshold may refuse


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(p) / T)``: the same ranking, sharper (T < 1) or softer (T > 1)."""
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def nll(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = probabilities[np.arange(len(labels)), np.asarray(labels, np.intp)]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature in [0.05, 20] with the lowest validation log-loss (a 1-D convex
    problem in log T: a coarse grid, then golden-section refinement)."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 61))
    losses = [nll(apply_temperature(probabilities, t), labels) for t in grid]
    best = int(np.argmin(losses))
    low, high = np.log(grid[max(best - 1, 0)]), np.log(grid[min(best + 1, len(grid) - 1)])
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(30):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if nll(apply_temperature(probabilities, np.exp(a)), labels) < nll(
            apply_temperature(probabilities, np.exp(b)), labels
        ):
            high = b
        else:
            low = a
    return float(np.exp((low + high) / 2))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15):
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by size."""
    confidence = np.asarray(confidence, np.float64)
    correct = np.asarray(correct, np.float64)
    if len(confidence) == 0:
        return 0.0
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.sum() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total / len(confidence))


@dataclass(frozen=True)
class Calibration:
    """What a model file stores to turn raw outputs into answers.

    ``reject``: the model's last output is "not a digit". ``threshold``: the lowest
    calibrated probability of the best digit that is still answered.
    """

    temperature: float = 1.0
    threshold: float = 0.0
    reject: bool = False

    def scores(self, outputs: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw outputs -> calibrated digit probabilities ``(n, n_classes)`` and
        P(not a digit) ``(n,)``; the two add up to one per row."""
        calibrated = apply_temperature(outputs, self.temperature)
        if self.reject:
            return calibrated[:, :n_classes], calibrated[:, n_classes]
        return calibrated, np.zeros(len(calibrated), calibrated.dtype)

    def refused(self, digit_probabilities: np.ndarray, not_digit: np.ndarray) -> np.ndarray:
        """Which rows get ``digit: null``."""
        best = digit_probabilities.max(axis=1)
        return (not_digit >= best) | (best < self.threshold)

    def to_dict(self) -> dict:
        return {"temperature": self.temperature, "threshold": self.threshold, "reject": self.reject}

    @classmethod
    def from_dict(cls, values: dict | None) -> Calibration:
        values = values or {}
        return cls(
            float(values.get("temperature", 1.0)),
            float(values.get("threshold", 0.0)),
            bool(values.get("reject", False)),
        )


def forced_choice(digit_probabilities: np.ndarray) -> np.ndarray:
    """Digit probabilities as if the input must be a digit: rows rescaled to sum to one
    (the choice every published accuracy is measured on)."""
    return digit_probabilities / np.maximum(digit_probabilities.sum(axis=1, keepdims=True), 1e-12)


def choose_threshold(best: np.ndarray, max_refused: float = MAX_REFUSED) -> float:
    """The highest threshold that refuses at most ``max_refused`` of validation digits
    (``best``: their calibrated top probabilities)."""
    if len(best) == 0:
        return 0.0
    return float(np.quantile(best, max_refused, method="lower"))


def fit(
    outputs: np.ndarray, labels: np.ndarray, n_classes: int, reject: bool
) -> tuple[Calibration, dict]:
    """Fit the temperature and the threshold on validation outputs; ``labels`` equal to
    ``n_classes`` mark non-digits. Returns the calibration and what was measured."""
    labels = np.asarray(labels)
    temperature = fit_temperature(outputs, labels)
    digits = labels < n_classes
    before = Calibration(1.0, 0.0, reject)
    after = Calibration(temperature, 0.0, reject)
    report = {"n_validation": int(digits.sum()), "n_non_digits": int((~digits).sum())}
    for name, calibration in (("before", before), ("after", after)):
        probs, _ = calibration.scores(outputs[digits], n_classes)
        correct = probs.argmax(axis=1) == labels[digits]
        report[f"ece_{name}"] = expected_calibration_error(probs.max(axis=1), correct)
    probs, not_digit = after.scores(outputs[digits], n_classes)
    eligible = probs.max(axis=1)[not_digit < probs.max(axis=1)]
    # The refusals the reject class already makes count against the budget.
    budget = max(MAX_REFUSED - (1 - len(eligible) / max(len(probs), 1)), 0.0)
    threshold = choose_threshold(eligible, budget) if budget > 0 else 0.0
    calibration = Calibration(temperature, threshold, reject)
    report["refused_digits"] = float(np.mean(calibration.refused(probs, not_digit)))
    if (~digits).any():
        probs, not_digit = calibration.scores(outputs[~digits], n_classes)
        report["refused_non_digits"] = float(np.mean(calibration.refused(probs, not_digit)))
    report["temperature"] = temperature
    report["threshold"] = threshold
    return calibration, report
