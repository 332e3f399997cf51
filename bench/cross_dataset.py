"""Score a model on MNIST and on the three handwriting sets it never trained on.

    python bench/cross_dataset.py --data-dir ../shared/datasets [--model M]

Runs ``digitrec evaluate --dataset NAME --json`` for each set (the bundled model when no
``--model`` is given), so the figures are exactly what a user reproduces with the CLI.
Prints a table and writes bench/results/cross-<date>.json. The floors are the targets of
issue 3 for the bundled model.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

TARGETS = {"mnist": 0.996, "usps": 0.99, "semeion": 0.95, "optdigits": 0.97}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a .digitrec file (default: the bundled model)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--datasets", nargs="+", default=list(TARGETS))
    parser.add_argument("--output", type=Path, help="JSON file to write")
    parser.add_argument("--tta", action="store_true", help="with test-time augmentation")
    args = parser.parse_args()
    results = []
    for name in args.datasets:
        command = [sys.executable, "-m", "digitrec.cli", "evaluate", "--dataset", name]
        command += ["--data-dir", args.data_dir, "--json"]
        if args.model:
            command += ["--model", args.model]
        if args.tta:
            command += ["--tta"]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            print(done.stderr.strip(), file=sys.stderr)
            return done.returncode
        result = json.loads(done.stdout)
        result.pop("confusion", None)
        result.pop("per_class", None)
        result["seconds"] = round(time.perf_counter() - started, 1)
        result["target"] = TARGETS.get(name)
        results.append(result)
        print(
            f"{name:10} accuracy {result['accuracy']:.2%} (target {TARGETS.get(name, 0):.1%})"
            f"  ece {result['ece']:.4f}  refused {result['refused']}/{result['n']}"
            f"  answered {result['answered_accuracy']:.2%}  {result['seconds']} s",
            flush=True,
        )
    output = args.output or Path(__file__).parent / "results" / f"cross-{date.today()}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    summary = {"model": args.model or "bundled", "tta": args.tta, "results": results}
    output.write_text(json.dumps(summary, indent=1))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
