"""Ensembles: several networks, each trained from its own seed, answering together.

Networks trained alike from different seeds make partly different mistakes, so the mean
of their softmax outputs is right more often than any one of them. An ensemble is one
model file like any other: one Keras network (``models.ensemble``) and one ONNX graph
that averages its members, calibrated afresh on validation images none of the members
trained on. Each member is also saved on its own as soon as it is trained
(``NAME.member-I.digitrec``), so an interrupted run keeps every finished network and a
rerun picks them up instead of training them again.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from digitrec.artifact import DigitModel, load_model, onnx_network, read_metadata
from digitrec.config import TrainConfig
from digitrec.errors import ConfigError, DigitrecError, ModelFileError


def member_path(output: str | Path, index: int) -> Path:
    output = Path(output)
    return output.with_name(f"{output.stem}.member-{index}{output.suffix}")


def fit_ensemble(
    config: TrainConfig,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    output: str | Path | None = None,
    save_best: bool = False,
    verbose: int = 0,
    preset: str = "custom",
    data_sha256: dict | None = None,
    started: float | None = None,
) -> tuple[DigitModel, list[DigitModel]]:
    """Train ``config.ensemble`` networks (seeds ``config.seed``, +1, ...) on the same
    training/validation split and combine them; returns the ensemble and its members."""
    from digitrec.train import fit_arrays

    started = time.perf_counter() if started is None else started
    members = []
    for index in range(config.ensemble):
        member_config = config.replace(seed=config.seed + index, ensemble=1)
        path = member_path(output, index) if output is not None else None
        model = _finished_member(path, member_config, data_sha256)
        if model is not None:
            if verbose:
                print(f"network {index + 1}/{config.ensemble}: already trained, {path}")
        else:
            if verbose:
                print(f"network {index + 1}/{config.ensemble} (seed {member_config.seed})")
            model = fit_arrays(
                member_config,
                images,
                labels,
                output=path,
                save_best=save_best,
                verbose=verbose,
                preset=preset,
                data_sha256=data_sha256,
                split_seed=config.seed,
            )
            if path is not None:
                model.save(path)
        members.append(model)
    combined = combine(members, images, labels, tta=config.tta, preset=preset)
    combined.metadata["train_seconds"] = round(time.perf_counter() - started, 2)
    return combined, members


def _finished_member(path: Path | None, config: TrainConfig, data_sha256) -> DigitModel | None:
    """The member saved at ``path`` by an earlier run of the same recipe on the same data."""
    if path is None or not path.exists():
        return None
    try:
        metadata = read_metadata(path)
    except ModelFileError:
        return None
    same = (
        metadata.get("complete")
        and TrainConfig.from_dict(metadata["config"]) == config
        and (data_sha256 is None or metadata.get("data", {}).get("sha256") == data_sha256)
    )
    return load_model(path) if same else None


def combine(
    members: list[DigitModel],
    images: np.ndarray,
    labels: np.ndarray,
    *,
    tta: bool = False,
    preset: str = "ensemble",
) -> DigitModel:
    """One model averaging ``members``, calibrated on their shared validation images
    (taken again from the training ``images`` they were fitted on)."""
    from digitrec.models import ensemble
    from digitrec.train import calibrate_model, split_validation, validation_data

    if len(members) < 2:
        raise ConfigError("an ensemble needs at least two networks")
    first = members[0]
    split = first.validation_split
    for member in members[1:]:
        if (member.input_size, member.class_names) != (first.input_size, first.class_names):
            raise ConfigError("ensemble members must read the same images into the same classes")
        if member.calibration.reject != first.calibration.reject:
            raise ConfigError("either every ensemble member has a 'not a digit' output or none")
        if member.validation_split != split:
            raise ConfigError(
                "ensemble members were validated on different parts of the training set, so "
                "no held-out images are left to calibrate them together; train them with "
                "`digitrec train --ensemble N`, or with the same --seed and --validation-size"
            )
    config = first.config.replace(ensemble=len(members), tta=tta, seed=split[0])
    keras_model = ensemble([member.keras_model for member in members])
    metadata = {
        **{key: first.metadata[key] for key in ("preprocessing", "class_names", "versions")},
        "preset": preset,
        "config": config.to_dict(),
        "calibration": {"reject": first.calibration.reject},
        "data": {**first.metadata.get("data", {}), "validation_seed": split[0]},
        "ensemble": {
            "members": [
                {
                    "config": member.metadata["config"],
                    "metrics": member.metadata.get("metrics", {}),
                    "history": member.metadata.get("history", {}),
                }
                for member in members
            ]
        },
        "history": {},
        "epochs_completed": 0,
        "complete": True,
        "metrics": {},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    model = DigitModel(keras_model, metadata, network=onnx_network(keras_model))
    if split[1]:
        _, _, val_images, val_labels = split_validation(images, labels, split[1], split[0])
        held_out = validation_data(config, val_images, val_labels)
        model.metadata["calibration"] = calibrate_model(model, held_out)
    return model


def combine_files(
    paths: list[str | Path],
    output: str | Path,
    *,
    tta: bool = False,
    data_dir: str | Path | None = None,
) -> DigitModel:
    """``digitrec ensemble``: combine saved models, score the result on the test split, save."""
    from digitrec.backend import import_keras
    from digitrec.data import is_normalized, load_dataset
    from digitrec.evaluate import evaluate_arrays
    from digitrec.train import _check_writable

    import_keras("combining models into an ensemble")
    _check_writable(Path(output))
    members = [load_model(path) for path in paths]
    dataset = members[0].config.dataset
    train_set = load_dataset(dataset, "train", data_dir)
    if any(m.metadata.get("data", {}).get("sha256") != train_set.sha256 for m in members):
        raise DigitrecError(
            f"every member must be trained on the {dataset} training set found here"
        )
    model = combine(members, train_set.images, train_set.labels, tta=tta)
    test_set = load_dataset(dataset, "test", data_dir)
    test = evaluate_arrays(
        model, test_set.images, test_set.labels, dataset, "test", normalized=is_normalized(dataset)
    )
    model.metadata["metrics"]["test"] = {"accuracy": test.accuracy, "loss": test.loss, "n": test.n}
    model.save(output)
    return model
