"""Train every preset through the CLI and report its test accuracy and wall time.

    python bench/train_presets.py --data-dir ../shared/datasets [--presets cnn30 dense512]

Each preset runs as its own ``digitrec train`` process (start-up and data loading
included), then ``digitrec evaluate --json`` scores the saved file. Prints one JSON
object per preset and writes them all to bench/results/presets-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from machine import header

FLOORS = {
    "cnn30": 0.989,
    "keras-docs-cnn": 0.990,
    "dense512": 0.978,
    "digits8x8-mlp": 0.90,
    "sklearn-mlp": 0.90,
}
DATASET = {"digits8x8-mlp": "digits8x8", "sklearn-mlp": "digits8x8"}


def digitrec(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "digitrec.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("DIGITREC_DATA"))
    parser.add_argument("--presets", nargs="+", default=list(FLOORS))
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).parent / "results" / f"presets-{date.today()}.json",
    )
    args = parser.parse_args()
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for preset in args.presets:
            model = str(Path(workdir) / f"{preset}.digitrec")
            started = time.perf_counter()
            digitrec("train", "--preset", preset, "-o", model, "-q", *data)
            wall = time.perf_counter() - started
            dataset = DATASET.get(preset, "mnist")
            scores = json.loads(
                digitrec("evaluate", model, "--dataset", dataset, "--json", *data).stdout
            )
            result = {
                "preset": preset,
                "dataset": dataset,
                "accuracy": scores["accuracy"],
                "floor": FLOORS[preset],
                "meets_floor": scores["accuracy"] >= FLOORS[preset],
                "train_wall_s": round(wall, 1),
            }
            print(json.dumps(result), flush=True)
            results.append(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps({**header("train_presets.py"), "results": results}, indent=1) + "\n"
    )
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
