import pytest

from digitrec.config import PRESETS, TrainConfig, get_preset
from digitrec.errors import ConfigError
from digitrec.models import MODELS


def test_presets_hold_the_tutorials_settings():
    assert PRESETS["keras-docs-cnn"].batch_size == 128 and PRESETS["keras-docs-cnn"].epochs == 10
    assert PRESETS["cnn30"].batch_size == 200
    assert PRESETS["dense512"].optimizer == "rmsprop" and PRESETS["dense512"].epochs == 5
    mlp = PRESETS["digits8x8-mlp"]
    assert (
        mlp.optimizer,
        mlp.learning_rate,
        mlp.momentum,
        mlp.l2,
        mlp.batch_size,
        mlp.epochs,
        mlp.dataset,
    ) == ("sgd", 0.1, 0.9, 1e-4, 100, 50, "digits8x8")
    assert all(config.model in MODELS for config in PRESETS.values())


def test_replace_overrides_only_given_fields():
    config = get_preset("cnn30").replace(epochs=2, batch_size=None)
    assert config.epochs == 2 and config.batch_size == 200
    with pytest.raises(ConfigError, match="unknown training setting"):
        config.replace(epoch=3)


def test_round_trip_through_dict():
    config = get_preset("digits8x8-mlp")
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(AttributeError):
        config.epochs = 3  # frozen


@pytest.mark.parametrize(
    "field, value",
    [
        ("epochs", 0),
        ("batch_size", 0),
        ("learning_rate", -1.0),
        ("momentum", 1.0),
        ("optimizer", "adagrad"),
        ("validation_size", -1),
        ("ensemble", 0),
        ("pen_shapes", 4),
        ("views", 0),
        ("negative_kinds", 3),
        ("pairs", -1),
    ],
)
def test_invalid_values_are_refused(field, value):
    with pytest.raises(ConfigError):
        TrainConfig(model="cnn30", **{field: value})


def test_early_stopping_needs_validation():
    with pytest.raises(ConfigError, match="early stopping needs validation"):
        TrainConfig(model="cnn30", early_stopping=2, validation_size=0)


def test_pairs_need_a_not_a_digit_class():
    with pytest.raises(ConfigError, match="need negatives"):
        TrainConfig(model="digitrec-cnn", pairs=10)
    assert TrainConfig(model="digitrec-cnn", pairs=10, negatives=5).pairs == 10


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'lenet'.*keras-docs-cnn"):
        get_preset("lenet")
