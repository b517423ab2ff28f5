"""The progress display: durations, heartbeat lines, the chapter log."""

from __future__ import annotations

import io
import time

import pytest

from forgetting_aus import progress


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (42.4, "42 s"), (59.6, "1 min 00 s"), (185, "3 min 05 s"),
                                           (7620, "2 h 07 min"), (-3, "0 s")])
def test_duration_text(seconds, text):
    assert progress.duration_text(seconds) == text


def test_status_line_estimates_from_the_last_run():
    assert progress.status_line("[3/11] 03", 60, previous=183) == \
        "[3/11] 03: 1 min 00 s elapsed, about 2 min 03 s left (last run: 3 min 03 s)"
    assert progress.status_line("[3/11] 03", 200, previous=183) == \
        "[3/11] 03: 3 min 20 s elapsed, longer than the last run (3 min 03 s)"
    assert progress.status_line("[3/11] 03", 5, previous=None) == \
        "[3/11] 03: 5 s elapsed (first timed run: no estimate yet)"


def test_chapter_log_writes_the_file_and_echoes(tmp_path):
    terminal = io.StringIO()
    with progress.ChapterLog(tmp_path / "logs" / "a.log", echo=terminal) as log:
        log.write("one\n")
        log.write("two\n")
        log.flush()
    assert (tmp_path / "logs" / "a.log").read_text() == "one\ntwo\n" == terminal.getvalue()


def test_heartbeat_beats_while_active_and_stops_after():
    stream = io.StringIO()
    with progress.Heartbeat("[1/2] 01", previous=None, interval=0.02, stream=stream):
        time.sleep(0.3)
    lines = stream.getvalue().splitlines()
    assert lines and all(line.startswith("[1/2] 01: ") for line in lines)
    time.sleep(0.1)
    assert stream.getvalue().splitlines() == lines  # nothing after the chapter ended


def test_heartbeat_rejects_a_non_positive_interval():
    with pytest.raises(ValueError, match="interval must be > 0 seconds"):
        progress.Heartbeat("x", previous=None, interval=0)
