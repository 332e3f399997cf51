"""Run a model's network without TensorFlow: onnxruntime on the ``model.onnx`` that every
model file carries. Start-up is a fraction of a second instead of several, which is
what a command that reads one photo, or a server, needs.
"""

from __future__ import annotations

import numpy as np

from digitrec.errors import ModelFileError


class OnnxNetwork:
    """The network of a model file, in onnxruntime; ``predict`` as Keras's."""

    def __init__(
        self,
        onnx_bytes: bytes,
        source: str = "model",
        threads: int | None = None,
        int8: bool = False,
    ):
        try:
            import onnxruntime
        except ImportError:  # pragma: no cover - onnxruntime is a core dependency
            raise ModelFileError("onnxruntime is not installed: pip install onnxruntime") from None
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initialisers are noise here
        if threads:  # a server runs one worker process per core, each with one thread
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(
                onnx_bytes, options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own exception types
            raise ModelFileError(f"{source}: damaged network in the model file ({error})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.onnx_bytes = onnx_bytes  # for `digitrec export`, which needs no Keras for it
        self.int8 = int8  # the 8-bit copy (quantize.py), not the float network

    def predict(self, inputs: np.ndarray, batch_size: int = 1024, verbose: int = 0) -> np.ndarray:
        inputs = np.ascontiguousarray(inputs, np.float32)
        parts = [
            self.session.run(None, {self.input_name: inputs[start : start + batch_size]})[0]
            for start in range(0, len(inputs), batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
