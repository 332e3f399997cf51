"""What every benchmark records beside its figures: the date, the machine, and how busy it
was, so that numbers from different runs (and machines) are compared knowingly."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],  # others' work
    }


def header(script: str) -> dict:
    """The fields every result file starts with."""
    return {
        "date": str(date.today()),
        "machine": machine(),
        "command": f"python bench/{script} " + " ".join(sys.argv[1:]),
    }


def write_result(result: dict, name: str, output: Path | None = None) -> Path:
    """Print the result and write it to ``output`` or bench/results/<name>-<date>.json."""
    text = json.dumps(result, indent=1) + "\n"
    print(text, end="")
    output = output or RESULTS / f"{name}-{date.today()}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(f"wrote {output}", file=sys.stderr)
    return output


def made_up_digits_parser(doc: str, n: int, n_help: str, seed: int) -> argparse.ArgumentParser:
    """The options of a bench that writes made-up pictures from MNIST digits: the data,
    the model, how many pictures, their seed, the split the digits come from (tune on
    train, report test), and where the result goes."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--model", help="a 28x28 .digitrec file (default: the bundled model)")
    parser.add_argument("--n", type=int, default=n, help=n_help)
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--split", default="test", choices=("train", "test"))
    parser.add_argument("--output", type=Path)
    return parser
