"""Progress on stderr: quiet unless asked for or on a terminal, one line a stage."""

from __future__ import annotations

import io

from exprgrad import progress
from exprgrad.cli import main
from pathlib import Path

LECTURE = Path(__file__).resolve().parent.parent / "examples" / "lecture.expr"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_quiet_when_stderr_is_not_a_terminal():
    stream = io.StringIO()
    with progress.reporting(None, stream) as reporter:
        assert reporter is None
        progress.report("lowering", 5, 10)
    assert stream.getvalue() == ""


def test_a_terminal_gets_a_reporter_and_no_progress_silences_it():
    with progress.reporting(None, Terminal()) as reporter:
        assert reporter is not None
    with progress.reporting(False, Terminal()) as reporter:
        assert reporter is None


def test_the_line_names_the_stage_the_count_and_the_time():
    stream = Terminal()
    with progress.reporting(True, stream, delay=3600) as reporter:
        progress.report("lowering", 1200, 40000, "nodes")
        assert reporter.line().startswith("exprgrad lowering: 1,200 / 40,000 nodes, ")
        assert reporter.line().endswith(" s")
        progress.finish("lowering")
    assert stream.getvalue() == ""  # shorter than the delay: nothing at all


def test_a_shown_stage_ends_with_its_line_and_a_newline():
    stream = Terminal()
    with progress.reporting(True, stream, delay=3600) as reporter:
        with progress.stage("checking"):
            with reporter.lock:
                reporter._draw()  # as the thread does once the delay is over
        assert stream.getvalue().startswith("\rexprgrad checking: ")
        assert stream.getvalue().endswith("\n")


def test_the_command_line_takes_progress_options(tmp_path, capsys):
    out = tmp_path / "m.py"
    assert main(["compile", str(LECTURE), "-o", str(out), "--progress"]) == 0
    assert main(["eval", str(LECTURE), "f", "x=3", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""  # a fast command shows nothing


def test_forced_progress_into_a_log_writes_whole_lines():
    stream = io.StringIO()
    with progress.reporting(True, stream, delay=3600) as reporter:
        with progress.stage("rendering"):
            with reporter.lock:
                reporter._draw()
    lines = stream.getvalue().splitlines(keepends=True)
    assert len(lines) == 2 and all(line.startswith("exprgrad rendering: ") and
                                   line.endswith(" s\n") for line in lines)
    assert "\r" not in stream.getvalue()
