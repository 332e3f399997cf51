"""A one-line progress bar for long batches: done/total, rate and time left, on stderr.

Written here rather than taken from a library because it is twenty lines and digitrec
keeps its dependencies to what the model needs.
"""

from __future__ import annotations

import sys
import time


class Progress:
    """Redraws ``label [#####.....] done/total  rate  ETA`` in place with a carriage return
    (and spaces, not terminal codes, so a log file given ``--progress`` stays readable).

    Drawn at most every ``interval`` seconds, so a fast loop does not spend its time on
    the terminal. ``clear()`` wipes the line before other output is printed; the next
    ``update()`` draws it again. With ``enabled=False`` it writes nothing at all.

    >>> with Progress(len(files), "predict") as bar:
    ...     for file in files:
    ...         read(file)
    ...         bar.update()
    """

    def __init__(
        self,
        total: int,
        label: str = "",
        *,
        unit: str = "images",
        enabled: bool = True,
        stream=None,
        interval: float = 0.1,
    ):
        self.total, self.label, self.unit = total, label, unit
        self.enabled, self.interval = enabled, interval
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._start = time.monotonic()
        self._drawn_at: float | None = None  # None while the line is not on screen
        self._width = 0

    def update(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        due = self._drawn_at is None or now - self._drawn_at >= self.interval
        if self.enabled and (due or self.done >= self.total):
            text = self.render(now - self._start)
            self._write("\r" + text.ljust(self._width))
            self._drawn_at, self._width = now, len(text)

    def render(self, elapsed: float) -> str:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(20 * min(fraction, 1.0))
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else None
        return (
            f"{self.label + ' ' if self.label else ''}[{'#' * filled}{'.' * (20 - filled)}] "
            f"{self.done}/{self.total} {self.unit}  {rate:.1f}/s  "
            f"ETA {clock(left) if left is not None else '?'}"
        )

    def clear(self) -> None:
        if self.enabled and self._drawn_at is not None:
            self._write("\r" + " " * self._width + "\r")
            self._drawn_at, self._width = None, 0

    def close(self) -> None:
        """Leave the last state on screen and move to a fresh line."""
        if self.enabled and self._drawn_at is not None:
            self._write("\n")
            self._drawn_at = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def clock(seconds: float) -> str:
    """``75`` -> ``'1:15'``, ``3725`` -> ``'1:02:05'``."""
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
