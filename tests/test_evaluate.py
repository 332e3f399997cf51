import numpy as np
import pytest
from sklearn import metrics

from digitrec.errors import ConfigError
from digitrec.evaluate import (
    Evaluation,
    confusion_matrix,
    cross_entropy,
    evaluate,
    per_class_metrics,
)


def test_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 500)
    predicted = np.where(rng.random(500) < 0.7, labels, rng.integers(0, 10, 500))
    predicted[predicted == 3] = 4  # class 3 never predicted: precision undefined -> 0
    confusion = confusion_matrix(labels, predicted, 10)
    np.testing.assert_array_equal(confusion, metrics.confusion_matrix(labels, predicted))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        labels, predicted, zero_division=0
    )
    ours = per_class_metrics(confusion)
    np.testing.assert_allclose([c["precision"] for c in ours], precision)
    np.testing.assert_allclose([c["recall"] for c in ours], recall)
    np.testing.assert_allclose([c["f1"] for c in ours], f1)
    assert [c["support"] for c in ours] == list(support)


def test_cross_entropy_matches_scikit_learn():
    rng = np.random.default_rng(1)
    probabilities = rng.dirichlet(np.ones(10), 50)
    labels = rng.integers(0, 10, 50)
    assert cross_entropy(probabilities, labels) == pytest.approx(
        metrics.log_loss(labels, probabilities, labels=range(10)), rel=1e-6
    )


def test_json_summary_has_the_documented_fields():
    probabilities = np.eye(10)[[0, 1, 2, 2]]
    result = Evaluation(
        "x", "test", list("0123456789"), np.array([0, 1, 2, 3]), probabilities
    ).to_dict()
    assert result["accuracy"] == 0.75 and result["n"] == 4 and result["errors"] == 1
    assert result["per_class"]["3"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert result["confusion"][3][2] == 1


def test_evaluate_a_saved_model(digits_model_path, digits_model):
    result = evaluate(digits_model_path, "digits8x8")
    assert result.n == 797
    assert result.accuracy == digits_model.metadata["metrics"]["test"]["accuracy"]
    assert "precision" in result.report()


def test_other_sizes_are_fitted_to_the_model(digits_model, real_data_dir):
    result = evaluate(digits_model, "usps", data_dir=real_data_dir)
    assert result.n == 9298 and 0.1 < result.accuracy <= 1


def test_class_mismatch_is_refused(digits_model):
    with pytest.raises(ConfigError, match="not those of fashion-mnist"):
        evaluate(digits_model, "fashion-mnist")
