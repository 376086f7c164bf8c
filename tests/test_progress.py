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


# --- the compiler's stages -------------------------------------------------------------
class Recorder:
    """Stands in for the reporter thread: the stages in the order they start."""

    def __init__(self):
        self.stage = None
        self.stages: list[tuple] = []

    def update(self, stage, done, total, unit):
        if stage != self.stage:
            self.stages.append((stage, done, total, unit))
        self.stage = stage

    def end(self, stage):
        if stage == self.stage:
            self.stage = None


STAGES = ["parsing", "lowering", "differentiating", "scheduling", "printing"]


def test_the_pipeline_reports_each_stage_as_it_starts():
    from exprgrad.compiler.pipeline import emit
    calls = []
    emit(LECTURE.read_text(), "lecture.expr", report=lambda *a: calls.append(a))
    names = [c[0] for c in calls]
    assert [s for i, s in enumerate(names) if i == 0 or names[i - 1] != s] == STAGES
    scheduling = [c for c in calls if c[0] == "scheduling"]
    assert [c[1] for c in scheduling] == list(range(len(scheduling)))  # done, one per function
    assert {c[2] for c in scheduling} == {len(scheduling)} and scheduling[0][3] == "functions"


def test_the_command_line_passes_the_reporter_to_the_compiler(tmp_path, monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(progress, "_active", recorder)
    assert main(["compile", str(LECTURE), "-o", str(tmp_path / "m.py")]) == 0
    assert [s[0] for s in recorder.stages] == STAGES
    assert recorder.stage is None  # the last stage ends with the command's work
    recorder.stages.clear()
    assert main(["eval", str(LECTURE), "f", "x=3"]) == 0
    assert [s[0] for s in recorder.stages] == STAGES + ["importing"]
