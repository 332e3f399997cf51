"""Does ``digitrec.read`` read numbers, and nothing on a blank row, under photo conditions?

    python bench/read_gallery.py --data-dir ../shared/datasets [--model M] [--n 30]
        [--seed 601] [--split test] [--spacing apart]

For every condition of the test gallery (``digitrec.gallery.CONDITIONS``: texture, hard
shadows, paper edges, dust, chalkboards, ...), ``--n`` numbers of 2-6 MNIST digits
written in a row (as ``bench/read_numbers.py`` spaces them, drawn as the gallery draws
its digits: ink on white, then the condition) and ``--n`` blank rows of the same sizes
under the same condition. Counts the numbers read exactly and the blank rows where
``read`` finds nothing. Tune on ``--split train``; report ``--split test`` with a seed
not used to choose anything. Writes bench/results/read-gallery-<date>.json.
"""

from __future__ import annotations

import numpy as np
from machine import header, made_up_digits_parser, write_result
from read_numbers import GAPS, number_ink

from digitrec import gallery
from digitrec.artifact import load_model
from digitrec.data import load_dataset
from digitrec.read import read


def main() -> None:
    parser = made_up_digits_parser(__doc__, 30, "numbers and blank rows per condition", 601)
    parser.add_argument("--spacing", default="apart", choices=tuple(GAPS))
    args = parser.parse_args()

    model = load_model(args.model)
    mnist = load_dataset("mnist", args.split, data_dir=args.data_dir)
    result = {**header("read_gallery.py"), "model": args.model or "bundled", "n": args.n}
    conditions, numbers_right, blanks_empty = {}, 0, 0
    for condition, steps in gallery.CONDITIONS.items():
        truths, numbers, blanks = [], [], []
        for k in range(args.n):
            rng = np.random.default_rng([args.seed, k, sum(map(ord, condition))])
            chosen = rng.choice(len(mnist.labels), int(rng.integers(2, 7)), replace=False)
            truths.append("".join(str(mnist.labels[i]) for i in chosen))
            ink = number_ink([mnist.images[i] for i in chosen], GAPS[args.spacing], rng)
            number = np.repeat(1.0 - ink[..., None], 3, axis=2)
            blank = np.ones_like(number)
            for step in steps:
                number = step(number, rng)
            for step in steps:
                blank = step(blank, rng)
            numbers.append(gallery.to_uint8(number))
            blanks.append(gallery.to_uint8(blank))
        texts = [r.text or "" for r in read(model, numbers)]
        found = [r.text or "" for r in read(model, blanks)]
        right = sum(t == x for t, x in zip(truths, texts, strict=True))
        empty = sum(not x for x in found)
        numbers_right, blanks_empty = numbers_right + right, blanks_empty + empty
        conditions[condition] = {
            "numbers read right": right,
            "blank rows read as nothing": empty,
            "read on blank rows": [x for x in found if x][:5],
        }
    total = args.n * len(conditions)
    result["numbers read right"] = f"{numbers_right} of {total} ({numbers_right / total:.1%})"
    result["blank rows read as nothing"] = f"{blanks_empty} of {total} ({blanks_empty / total:.1%})"
    result["conditions"] = conditions
    write_result(result, "read-gallery", args.output)


if __name__ == "__main__":
    main()
