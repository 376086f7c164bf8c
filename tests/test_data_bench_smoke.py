"""The data-axis benchmark runs end to end on tiny sizes, and every peer
agrees with NumPy written by hand (numbers are not checked: speed is
measured in bench/, never asserted in tests)."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("numpy")
BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name):
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_quick_data_run_prints_a_table_per_workload(capsys):
    run = _load("data_run")
    assert run.main(["--sizes", "7", "--rounds", "1", "--workloads", "logistic",
                     "oscillator"]) == 0
    out = capsys.readouterr().out
    for name in ("logistic", "oscillator"):
        assert f"| {name} | N = 7 |" in out
    assert "| numpy by hand | " in out and "DISAGREES" not in out


def test_the_hand_written_gradients_match_finite_differences():
    """The reference can fail: each hand gradient against central differences."""
    np = pytest.importorskip("numpy")
    workloads = _load("data_workloads")
    for name, function in workloads.HAND_NUMPY.items():
        task = workloads.make_task(name, 9, seed=4)
        _, grad = function(task.params, *task.data)
        for i in range(len(task.params)):
            step = np.zeros_like(task.params)
            step[i] = 1e-6
            plus = function(task.params + step, *task.data)[0]
            minus = function(task.params - step, *task.data)[0]
            assert abs((plus - minus) / 2e-6 - grad[i]) < 1e-7, (name, i)


def test_the_logistic_module_under_jax_jit_reads_the_data_as_often_as_jax_does():
    """What XLA runs for the generated module: two passes over X (the
    products X·w and d_z·X), as for JAX's own value_and_grad, not one per
    column (a structural count, not a timing)."""
    pytest.importorskip("jax")
    layout = _load("array_layout")
    summary = layout.hlo_summary("logistic", 50).splitlines()
    assert [line.rsplit(", ", 1)[1] for line in summary] == ["2 reading the data"] * 2, summary
