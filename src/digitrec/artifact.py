"""The model file: one zip holding ``model.keras`` and ``digitrec.json``.

``model.keras`` is a standard Keras 3 file (loadable by Keras alone); ``digitrec.json``
holds everything needed to use the model honestly: the training config, the
preprocessing contract, class names, checksums of the training data, metrics, the
training history and library versions. Loading uses Keras safe mode and never
unpickles anything, so opening a model file cannot run code from it.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from digitrec.backend import import_keras
from digitrec.calibrate import Calibration, forced_choice
from digitrec.config import TrainConfig
from digitrec.errors import ModelFileError
from digitrec.preprocess import to_model_input

FORMAT = "digitrec-model"
FORMAT_VERSION = 1
KERAS_ENTRY, METADATA_ENTRY = "model.keras", "digitrec.json"
# The model that ships inside the package, used whenever no model file is given. It is
# made by `digitrec train --preset default -o src/digitrec/assets/default.digitrec`
# (seeded; about 40 min on 2 cores) and its scores are in its metadata.
DEFAULT_MODEL = Path(__file__).parent / "assets" / "default.digitrec"


class DigitModel:
    """A trained classifier and its metadata.

    >>> model = load_model("cnn30.digitrec")
    >>> model.predict_proba(images).argmax(axis=1)  # images: uint8 (n, 28, 28)
    """

    def __init__(self, keras_model, metadata: dict):
        self.keras_model = keras_model
        self.metadata = metadata

    @property
    def input_size(self) -> tuple[int, int]:
        height, width = self.metadata["preprocessing"]["input_size"]
        return int(height), int(width)

    @property
    def class_names(self) -> list[str]:
        return list(self.metadata["class_names"])

    @property
    def config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.metadata["config"])

    @property
    def calibration(self) -> Calibration:
        """Temperature, refusal threshold and whether the model has a "not a digit"
        output (``calibrate.py``); models without one answer as their softmax says."""
        return Calibration.from_dict(self.metadata.get("calibration"))

    def predict_outputs(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """The network's raw softmax ``(n, n_outputs)`` for ``uint8`` images ``(n, h, w)``."""
        images = np.asarray(images)
        if images.ndim != 3 or images.shape[1:] != self.input_size:
            raise ValueError(
                f"model expects images (n, {self.input_size[0]}, "
                f"{self.input_size[1]}), got {images.shape}"
            )
        n_outputs = len(self.class_names) + int(self.calibration.reject)
        if len(images) == 0:
            return np.zeros((0, n_outputs), np.float32)
        inputs = to_model_input(images)
        outputs = self.keras_model.predict(inputs, batch_size=batch_size, verbose=0)
        return np.asarray(outputs, dtype=np.float32)

    def scores(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated digit probabilities ``(n, n_classes)`` and P(not a digit) ``(n,)``."""
        outputs = self.predict_outputs(images)
        expected = len(self.class_names) + int(self.calibration.reject)
        if outputs.shape[1] != expected:
            raise ModelFileError(
                f"damaged digitrec model: the network has {outputs.shape[1]} outputs, "
                f"its metadata describes {expected}"
            )
        return self.calibration.scores(outputs, len(self.class_names))

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``, calibrated, as if the input must be a
        digit (the forced choice that accuracy is measured on); rows sum to one."""
        return forced_choice(self.scores(images)[0])

    def save(self, path: str | Path) -> Path:
        """Write the model file atomically: a crash or Ctrl-C never leaves half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, **self.metadata}
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp makes it private; a model is not
        try:
            with tempfile.TemporaryDirectory() as workdir:
                keras_file = Path(workdir) / KERAS_ENTRY
                self.keras_model.save(keras_file)
                with zipfile.ZipFile(tmp_name, "w", zipfile.ZIP_DEFLATED) as archive:
                    archive.writestr(METADATA_ENTRY, json.dumps(metadata, indent=1))
                    archive.write(keras_file, KERAS_ENTRY)
            os.replace(tmp_name, path)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
        return path


def read_metadata(path: str | Path | None = None) -> dict:
    """The metadata of a model file (default: the bundled model), without loading Keras."""
    path = _resolve(path)
    with _open(path) as archive:
        return _metadata(archive, path)


def load_model(path: str | Path | None = None) -> DigitModel:
    """Load a digitrec model file (safe mode: no code in the file is executed).

    With no path, the bundled default model: no data, training or download needed.
    """
    path = _resolve(path)
    with _open(path) as archive:
        metadata = _metadata(archive, path)
        if KERAS_ENTRY not in archive.namelist():
            raise ModelFileError(f"{path}: damaged digitrec model (no {KERAS_ENTRY} inside)")
        keras = import_keras()
        with tempfile.TemporaryDirectory() as workdir:
            try:
                keras_file = Path(archive.extract(KERAS_ENTRY, workdir))
                keras_model = keras.saving.load_model(keras_file, compile=False, safe_mode=True)
            except Exception as error:  # Keras raises many types for a bad file
                raise ModelFileError(
                    f"{path}: the Keras model inside cannot be loaded "
                    f"({type(error).__name__}: {error})"
                ) from None
    return DigitModel(keras_model, metadata)


def _resolve(path: str | Path | None) -> Path:
    if path is not None:
        return Path(path)
    if not DEFAULT_MODEL.exists():
        raise ModelFileError(
            f"the bundled model is missing from this install ({DEFAULT_MODEL}); "
            f"reinstall digitrec or give a model file with --model"
        )
    return DEFAULT_MODEL


def _open(path: Path) -> zipfile.ZipFile:
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder, not a digitrec model file")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelFileError(f"{path}: not a digitrec model file ({error})") from None


def _metadata(archive: zipfile.ZipFile, path: Path) -> dict:
    try:
        metadata = json.loads(archive.read(METADATA_ENTRY))
    except KeyError:
        raise ModelFileError(
            f"{path}: not a digitrec model file (no {METADATA_ENTRY}); "
            f"a plain .keras file must be trained with digitrec"
        ) from None
    except (ValueError, zipfile.BadZipFile, OSError) as error:
        raise ModelFileError(f"{path}: damaged digitrec model ({error})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a digitrec model file")
    missing = [key for key in ("config", "preprocessing", "class_names") if key not in metadata]
    if missing:
        raise ModelFileError(
            f"{path}: damaged digitrec model (metadata lacks {', '.join(missing)})"
        )
    if metadata.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: made by a newer digitrec (format "
            f"{metadata['format_version']}); upgrade digitrec to load it"
        )
    return metadata
