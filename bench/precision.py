"""Is bfloat16 training faster than float32 on this CPU? The fast preset's step, both ways.

    python bench/precision.py [--steps 80] [--repeats 3]

``digitrec train --preset fast`` trains in bfloat16 only where ``backend.cpu_prefers_bf16``
says so (AMX, or AMD's AVX512-BF16). That rule comes from two machines; this script checks
it on yours. Each run is its own process (Keras's dtype policy is global): the fast
network, its optimizer and loss, ``--steps`` batches of random images as large as the
preset's; the median step after the first five (tracing excluded). Writes
bench/results/precision-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from machine import header, write_result

from digitrec.backend import cpu_prefers_bf16
from digitrec.config import get_preset

ONE_RUN = """
import json, sys, time
import numpy as np
from digitrec.backend import import_keras
from digitrec.config import get_preset
from digitrec.models import build_model
from digitrec.train import _loss, _optimizer

precision, steps = sys.argv[1], int(sys.argv[2])
keras = import_keras()
config = get_preset("fast")
keras.config.set_dtype_policy(precision)
model = build_model(config, (28, 28))
model.compile(optimizer=_optimizer(keras, config, steps), loss=_loss(keras, config.label_smoothing))
rng = np.random.default_rng(0)
batch = config.batch_size
images = keras.ops.convert_to_tensor(rng.random((batch * steps, 28, 28, 1), np.float32))
labels = rng.integers(0, 10, batch * steps)
ends = []

class Clock(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        ends.append(time.perf_counter())

model.fit(images, labels, batch_size=batch, epochs=1, verbose=0, callbacks=[Clock()])
print(json.dumps(float(np.median(np.diff(ends[5:]))) * 1000))
"""


def step_ms(precision: str, steps: int) -> float:
    done = subprocess.run(
        [sys.executable, "-c", ONE_RUN, precision, str(steps)], capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"{precision}: the run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    result = {
        **header("precision.py"),
        "batch_size": get_preset("fast").batch_size,
        "digitrec_picks_bfloat16": cpu_prefers_bf16(),
    }
    runs: dict[str, list[float]] = {"float32": [], "mixed_bfloat16": []}
    for _ in range(args.repeats):  # alternated, so a slow spell hits both
        for precision, times in runs.items():
            times.append(round(step_ms(precision, args.steps), 2))
    for precision, times in runs.items():
        result[precision] = {"step_ms": times, "median_step_ms": statistics.median(times)}
    faster = min(runs, key=lambda name: result[name]["median_step_ms"])
    result["faster_here"] = faster
    result["rule_agrees"] = (faster == "mixed_bfloat16") == result["digitrec_picks_bfloat16"]
    write_result(result, "precision", args.output)


if __name__ == "__main__":
    main()
