"""Import Keras only when a function needs it, with a quiet TensorFlow start-up.

``import digitrec`` must stay cheap: TensorFlow takes seconds to start, and reading a
dataset or a model's metadata needs none of it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile

from digitrec.errors import MissingExtraError

# Reading digits needs only the base install (numpy, pillow, scipy, onnxruntime). These
# come with `pip install "digitrec[train]"`; the name in the message is the pip package.
TRAIN_EXTRA = {
    "keras": "keras",
    "tensorflow": "tensorflow-cpu",
    "sklearn": "scikit-learn",
    "onnx": "onnx",
}

# Start-up banners that TensorFlow's C++ logging prints before it reads
# TF_CPP_MIN_LOG_LEVEL (an abseil bug); every other line still reaches stderr.
_BANNERS = (
    "All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on",
    "cpu_feature_guard",
    "This TensorFlow binary is optimized",
    "To enable the following instructions",
    "rebuild TensorFlow with the appropriate compiler flags",
)


def require(module: str, purpose: str):
    """Import a module of the ``train`` extra, or say in one line how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = TRAIN_EXTRA.get(module.split(".")[0], module)
        raise MissingExtraError(
            f"{purpose} needs {package}, which this install of digitrec leaves out: "
            f'pip install "digitrec[train]"'
        ) from None


# Set by the command line, which owns its process: Keras then starts without scikit-learn,
# which it imports only for its own scikit-learn wrappers (digitrec never uses them). That
# is 0.7-1 s of the 18-20 s the `fast` preset takes here. A library caller keeps Keras whole.
_lean_keras = False


def lean_keras() -> None:
    """Start Keras without its scikit-learn wrappers in this process (the CLI's choice)."""
    global _lean_keras
    _lean_keras = True


@contextlib.contextmanager
def _hidden(module: str):
    """``import module`` fails inside (unless it is already imported), and works after."""
    if module in sys.modules:
        yield
        return
    sys.modules[module] = None  # the import system's "not available" marker
    try:
        yield
    finally:
        if sys.modules.get(module, 0) is None:
            del sys.modules[module]


def import_keras(purpose: str = "training or loading a Keras network"):
    """Return the ``keras`` module, on the TensorFlow backend unless the user chose another."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # Level 3 also hides a harmless tf.data "unknown attribute" error that TF 2.21 prints;
    # real failures still raise Python exceptions.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    lean = _hidden("sklearn") if _lean_keras else contextlib.nullcontext()
    with quiet_stderr(), lean:
        keras = require("keras", purpose)
        if keras.config.backend() == "tensorflow":
            require("tensorflow", purpose)  # its banners are printed at import
    return keras


@contextlib.contextmanager
def quiet_stderr():
    """Keep TensorFlow's C++ banners off the terminal: file descriptor 2 goes to a
    temporary file, then every line but the banners is replayed."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if line.strip() and not any(banner in line for banner in _BANNERS):
                    print(line, file=sys.stderr)


def cpu_prefers_bf16(cpuinfo: str | None = None) -> bool:
    """Whether training in bfloat16 is faster than in float32 on this CPU (``cpuinfo``:
    the text of /proc/cpuinfo; read when None). Having bfloat16 instructions is not
    enough: the fast preset's training step with AVX512-BF16 took about a quarter less
    CPU time on an AMD EPYC, but a third more wall time on an Intel Xeon without AMX
    (batch 128: 14.8 against 11.2 ms, ``bench/precision.py``). AMX is Intel's matrix unit for
    bfloat16, so it keeps it (not measured here). Linux only; elsewhere, assume not."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as file:
                cpuinfo = file.read()
        except OSError:
            return False
    first_cpu = cpuinfo.split("\n\n", 1)[0]
    fields = {
        key.strip(): value.strip()
        for key, _, value in (line.partition(":") for line in first_cpu.splitlines())
    }
    flags = fields.get("flags", "").split()
    amd = fields.get("vendor_id") == "AuthenticAMD"
    return "amx_bf16" in flags or (amd and "avx512_bf16" in flags)


def versions() -> dict[str, str]:
    """Versions of everything that shapes a trained model, for the model file."""
    import platform

    import numpy

    from digitrec import __version__

    keras = import_keras()
    found = {
        "digitrec": __version__,
        "keras": keras.__version__,
        "backend": keras.config.backend(),
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }
    if found["backend"] == "tensorflow":
        import tensorflow

        found["tensorflow"] = tensorflow.__version__
    return found
