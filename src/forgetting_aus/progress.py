"""What a long run shows while it runs: each chapter's output live, a log file, a heartbeat.

The runner executes chapters in Jupyter kernels through papermill, which by default keeps
every printed line inside the notebook until the chapter ends; on the paper profile a
chapter runs for hours. Here:

- :class:`ChapterLog` receives the chapter's printed output (stdout and stderr: training
  bars with loss and ETA, TensorFlow messages) as papermill streams it, and writes it to
  the terminal and to ``results/<profile>/logs/<chapter>.log``.
- :class:`Heartbeat` prints one line every ``interval`` seconds while the chapter runs:
  elapsed time and, when an earlier run of the chapter was timed, the time left by that
  run's measure.

None of it reaches the rendered book: Jupyter Book drops stderr (``nb_output_stderr:
remove`` in ``_config.yml``) and the heartbeat is the runner's own output.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import TextIO


def duration_text(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``: a duration as a reader says it."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def status_line(name: str, elapsed: float, *, previous: float | None) -> str:
    """One heartbeat line: elapsed time, and the time left by the last run's measure.

    Parameters
    ----------
    name : str
        What runs (``"[3/11] 03_pain_transfer"``).
    elapsed : float
        Seconds since it started.
    previous : float or None, keyword-only
        Seconds the last timed run of it took; None when it never ran.
    """
    line = f"{name}: {duration_text(elapsed)} elapsed"
    if previous is None:
        return line + " (first timed run: no estimate yet)"
    left = previous - elapsed
    if left > 0:
        return line + f", about {duration_text(left)} left (last run: {duration_text(previous)})"
    return line + f", longer than the last run ({duration_text(previous)})"


class ChapterLog:
    """A file-like sink that writes to a log file and echoes to a terminal stream.

    Papermill's ``stdout_file`` and ``stderr_file`` take it: each stream message a
    chapter's kernel sends arrives here as soon as papermill receives it.
    """

    def __init__(self, path: Path, *, echo: TextIO | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8")
        self._echo = echo
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._file.write(text)
            if self._echo is not None:
                self._echo.write(text)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._file.flush()
            if self._echo is not None:
                self._echo.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> ChapterLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Heartbeat:
    """While active, write :func:`status_line` every ``interval`` seconds (a daemon thread).

    Parameters
    ----------
    name : str
    previous : float or None, keyword-only
        The last timed run's seconds (None: no estimate).
    interval : float, keyword-only
        Seconds between lines; the first comes after one interval.
    stream : text stream, keyword-only
        Default ``sys.stderr``.
    """

    def __init__(self, name: str, *, previous: float | None, interval: float = 30.0,
                 stream: TextIO | None = None) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        self.name, self.previous, self.interval = name, previous, interval
        self.stream = stream or sys.stderr
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._started = 0.0

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            self.stream.write(status_line(self.name, time.monotonic() - self._started, previous=self.previous) + "\n")
            self.stream.flush()

    def __enter__(self) -> Heartbeat:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
