"""The model file: one zip holding ``model.keras``, ``model.onnx`` and ``digitrec.json``.

``model.keras`` is a standard Keras 3 file (loadable by Keras alone), used to train
further; ``model.onnx`` is the same network for onnxruntime (``export.py``), used to
read digits without starting TensorFlow, and checked against Keras when saved;
``digitrec.json``
holds everything needed to use the model honestly: the training config, the
preprocessing contract, class names, checksums of the training data, metrics, the
training history and library versions. ``model.int8.onnx``, when present, is an 8-bit
copy of the network for bulk reading (``quantize.py``; ``digitrec quantize``). Loading
uses Keras safe mode and never unpickles anything, so opening a model file cannot run
code from it.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
import zipfile
from functools import partial
from pathlib import Path

import numpy as np

from digitrec.backend import import_keras
from digitrec.calibrate import Calibration, forced_choice
from digitrec.config import TrainConfig
from digitrec.errors import ConfigError, DigitrecError, ModelFileError
from digitrec.preprocess import to_model_input

FORMAT = "digitrec-model"
FORMAT_VERSION = 1
KERAS_ENTRY, ONNX_ENTRY, METADATA_ENTRY = "model.keras", "model.onnx", "digitrec.json"
INT8_ENTRY = "model.int8.onnx"
# Largest difference allowed between the ONNX and Keras outputs of one model.
ONNX_TOLERANCE = 1e-4
# The model that ships inside the package, used whenever no model file is given. It is
# made by `digitrec train --preset default -o src/digitrec/assets/default.digitrec`
# (seeded; about 40 min on 2 cores) and its scores are in its metadata.
DEFAULT_MODEL = Path(__file__).parent / "assets" / "default.digitrec"


class DigitModel:
    """A trained classifier and its metadata.

    >>> model = load_model("cnn30.digitrec")
    >>> model.predict_proba(images).argmax(axis=1)  # images: uint8 (n, 28, 28)
    """

    def __init__(self, keras_model, metadata: dict, network=None, source: Path | None = None):
        self._keras_model = keras_model
        self.metadata = metadata
        # An onnxruntime network (Keras when None). Given with a Keras model, it must be
        # that model's export: save() writes it as it is.
        self._network = network
        self._source = source  # the file to load Keras from, when first needed
        # Test-time augmentation (tta.py): as the model was trained to be used, unless set.
        self.tta = bool(metadata.get("config", {}).get("tta", False))

    @property
    def keras_model(self):
        """The Keras network (for training further, saving); loaded on first use when
        the model was opened with the light runtime."""
        if self._keras_model is None:
            if self._source is None:
                raise ModelFileError("this model has no Keras network to train or save")
            self._keras_model = _load_keras(self._source)
        return self._keras_model

    @property
    def runtime(self) -> str:
        """What computes this model's outputs: "onnx", "int8" (its 8-bit copy) or "keras"."""
        if self._network is None:
            return "keras"
        return "int8" if self._network.int8 else "onnx"

    @property
    def onnx_bytes(self) -> bytes | None:
        """The float ONNX network read from the model file; None when it had none (or was
        opened with its 8-bit copy)."""
        if self._network is None or self._network.int8:
            return None
        return self._network.onnx_bytes

    @property
    def int8_bytes(self) -> bytes | None:
        """The 8-bit ONNX network, when the model was opened with it (runtime "int8")."""
        if self._network is None or not self._network.int8:
            return None
        return self._network.onnx_bytes

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
    def validation_split(self) -> tuple[int, int]:
        """(seed, size) of the validation images held out of the training split: enough
        to draw them again (``train.split_validation``)."""
        data = self.metadata.get("data", {})
        return int(data.get("validation_seed", self.config.seed)), int(self.config.validation_size)

    @property
    def calibration(self) -> Calibration:
        """Temperature, refusal threshold and whether the model has a "not a digit"
        output (``calibrate.py``); models without one answer as their softmax says."""
        return Calibration.from_dict(self.metadata.get("calibration"))

    def predict_outputs(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """The network's raw softmax ``(n, n_outputs)`` for ``uint8`` images ``(n, h, w)``,
        averaged over the test-time forms of each image when ``self.tta``."""
        images = np.asarray(images)
        if images.ndim != 3 or images.shape[1:] != self.input_size:
            raise ValueError(
                f"model expects images (n, {self.input_size[0]}, "
                f"{self.input_size[1]}), got {images.shape}"
            )
        n_outputs = len(self.class_names) + int(self.calibration.reject)
        if len(images) == 0:
            return np.zeros((0, n_outputs), np.float32)
        network = self.keras_model if self._network is None else self._network

        def run(batch: np.ndarray) -> np.ndarray:
            return network.predict(to_model_input(batch), batch_size=batch_size, verbose=0)

        if self.tta:
            from digitrec import tta

            return tta.averaged(run, images).astype(np.float32)
        return np.asarray(run(images), dtype=np.float32)

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
        metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, **self.metadata}
        # An 8-bit copy is not carried over: this network may have changed since (saved
        # again after fine-tuning), and `digitrec quantize` makes a new one in a second.
        metadata.pop("int8", None)
        network = self._network if self.runtime == "onnx" else onnx_network(self.keras_model)
        onnx_bytes = network.onnx_bytes if network is not None else None
        buffer = io.BytesIO()
        with tempfile.TemporaryDirectory() as workdir:
            keras_file = Path(workdir) / KERAS_ENTRY
            self.keras_model.save(keras_file)
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(METADATA_ENTRY, json.dumps(metadata, indent=1))
                archive.write(keras_file, KERAS_ENTRY)
                if onnx_bytes is not None:
                    archive.writestr(ONNX_ENTRY, onnx_bytes)
        return write_atomically(path, buffer.getvalue())


def write_atomically(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as error:  # a read-only place, /proc, a file where a folder should be
        raise DigitrecError(f"{path}: cannot write here ({error.strerror or error})") from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp makes it private; a model is not
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return path


def read_metadata(path: str | Path | None = None) -> dict:
    """The metadata of a model file (default: the bundled model), without loading Keras."""
    path = _resolve(path)
    with _open(path) as archive:
        return _metadata(archive, path)


def load_model(
    path: str | Path | None = None, runtime: str = "auto", threads: int | None = None
) -> DigitModel:
    """Load a digitrec model file (safe mode: no code in the file is executed).

    With no path, the bundled default model: no data, training or download needed.
    ``runtime``: "onnx" reads digits with onnxruntime and never imports TensorFlow;
    "int8" does too, with the file's 8-bit copy of the network (faster in bulk; from
    ``digitrec quantize``); "keras" loads the Keras network (to train further); "auto" is
    onnx when the file has an ONNX network (files from before it had none) and keras
    otherwise.
    ``threads`` caps onnxruntime's threads (default: one per core).
    """
    if runtime not in ("auto", "onnx", "int8", "keras"):
        raise ValueError(f"runtime must be auto, onnx, int8 or keras, not {runtime!r}")
    path = _resolve(path)
    with _open(path) as archive:
        metadata = _metadata(archive, path)
        names = archive.namelist()
        if KERAS_ENTRY not in names:
            raise ModelFileError(f"{path}: damaged digitrec model (no {KERAS_ENTRY} inside)")
        if runtime == "int8":
            if INT8_ENTRY not in names:
                raise ModelFileError(
                    f"{path}: has no 8-bit network; `digitrec quantize {path}` adds one"
                )
            from digitrec.runtime import OnnxNetwork

            network = OnnxNetwork(archive.read(INT8_ENTRY), str(path), threads, int8=True)
            return DigitModel(None, metadata, network=network, source=path)
        if runtime != "keras" and ONNX_ENTRY in names:
            from digitrec.runtime import OnnxNetwork

            network = OnnxNetwork(archive.read(ONNX_ENTRY), str(path), threads=threads)
            return DigitModel(None, metadata, network=network, source=path)
        if runtime == "onnx":
            raise ModelFileError(
                f"{path}: has no ONNX network (saved by an older digitrec); "
                f"`digitrec export {path} --format digitrec -o NEW` adds one"
            )
    return DigitModel(_load_keras(path), metadata, source=path)


def add_int8(path: str | Path, int8_bytes: bytes, report: dict, output: str | Path) -> Path:
    """Write the model file at ``path`` to ``output`` with ``int8_bytes`` as its 8-bit
    network and ``report`` in its metadata. Every other entry is copied byte for byte
    (a Keras network keeps its optimizer state), and the file is replaced atomically."""
    path = _resolve(path)
    buffer = io.BytesIO()
    with _open(path) as source:
        metadata = _metadata(source, path)
        metadata["int8"] = report
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for info in source.infolist():
                if info.filename not in (METADATA_ENTRY, INT8_ENTRY):
                    archive.writestr(info, source.read(info.filename))
            archive.writestr(METADATA_ENTRY, json.dumps(metadata, indent=1))
            archive.writestr(INT8_ENTRY, int8_bytes)
    return write_atomically(output, buffer.getvalue())


def _load_keras(path: Path):
    keras = import_keras()
    with _open(path) as archive, tempfile.TemporaryDirectory() as workdir:
        try:
            keras_file = Path(archive.extract(KERAS_ENTRY, workdir))
            return keras.saving.load_model(keras_file, compile=False, safe_mode=True)
        except Exception as error:  # Keras raises many types for a bad file
            raise ModelFileError(
                f"{path}: the Keras model inside cannot be loaded ({type(error).__name__}: {error})"
            ) from None


def onnx_network(keras_model):
    """The Keras network, exported and checked, in onnxruntime; None (with a warning) for a
    network that export.py cannot write, which is then saved Keras-only."""
    from digitrec.runtime import OnnxNetwork

    try:
        return OnnxNetwork(checked_export(keras_model))
    except ConfigError as error:
        warnings.warn(f"saved without an ONNX network ({error})", stacklevel=3)
        return None


def checked_export(keras_model, format: str = "onnx") -> bytes:
    """The network as ONNX (or TFLite), after checking that its runtime computes what Keras
    does (within ONNX_TOLERANCE on a fixed batch of random and blank inputs)."""
    from digitrec import export

    if format == "onnx":
        from digitrec.runtime import OnnxNetwork

        data = export.to_onnx_bytes(keras_model)
        run = OnnxNetwork(data).predict
    else:
        data = export.to_tflite_bytes(keras_model)
        run = partial(export.run_tflite, data)
    shape = tuple(int(d) for d in keras_model.input_shape[1:])
    probe = np.random.default_rng(0).random((32, *shape), dtype=np.float32)
    probe[0] = 0
    # A direct call, not predict(): no tf.function to trace for a batch of 32 (0.1-0.2 s
    # on every checkpoint of a run).
    from keras import ops

    expected = ops.convert_to_numpy(keras_model(probe, training=False)).astype(np.float32)
    got = run(probe)
    if got.shape != expected.shape or np.abs(got - expected).max() > ONNX_TOLERANCE:
        raise ConfigError(f"the {format} export differs from the Keras network")
    return data


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
