"""The benchmark script runs end to end on tiny sizes (numbers are not checked:
speed is measured in bench/, never asserted in tests)."""

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_quick_run_prints_a_table_with_every_installed_peer(capsys):
    run = _load("run")
    assert run.main(["--quick", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "| exprgrad |" in out
    assert "exprgrad gradient / forward" in out
    assert "DISAGREES" not in out
    for module, system in [("micrograd", "micrograd (GC on)"), ("torch", "torch scalar tensors"),
                           ("jax", "jax jit(value_and_grad)"), ("casadi", "casadi SX function")]:
        if run.installed(module):
            assert f"| {system} |" in out


def test_every_peer_agrees_with_exprgrad_on_a_tiny_mlp():
    """The agreement check can fail: a wrong gradient is caught."""
    run = _load("run")
    task = run.make_mlp(2, [2, 1], 3, seed=5)
    grad, _ = run.exprgrad_mlp(task)
    reference = grad()
    assert run.agree(reference, run.Entry("micrograd", run.micrograd_mlp(task))) == ""
    value, grads = reference
    wrong = run.Entry("wrong", lambda: (value, [g * 1.001 for g in run.flatten(grads)]))
    assert run.agree(reference, wrong).startswith("gradient")


def test_mlp_source_matches_a_direct_evaluation():
    run = _load("run")
    import exprgrad
    import math
    task = run.make_mlp(3, [4, 1], 2, seed=7)
    module = exprgrad.compile(run.mlp_source(task))
    W1, b1, W2, b2 = task.params
    expected = 0.0
    for x, y in zip(task.xs, task.ys):
        h = [math.tanh(sum(w * xi for w, xi in zip(row, x)) + b) for row, b in zip(W1, b1)]
        out = math.tanh(sum(w * hi for w, hi in zip(W2[0], h)) + b2[0])
        expected += (out - y) ** 2
    assert math.isclose(module.loss(*task.params), expected, rel_tol=1e-12)


def test_scaling_run_writes_a_plot(tmp_path):
    scaling = _load("scaling")
    rows = scaling.run_all([("chain", 5), ("mlp", 2)], log=lambda message: None)
    assert [r["family"] for r in rows] == ["chain", "mlp"]
    assert all(r["nodes"] > 0 and r["total"] > 0 and r["call_us"] > 0 for r in rows)
    assert "| chain n=5 |" in scaling.table(rows)
    if not scaling_plot_available():
        return
    path = tmp_path / "scaling.png"
    scaling.plot(rows, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def scaling_plot_available() -> bool:
    try:
        import matplotlib  # noqa: F401  (a `bench` extra, optional here)
    except ImportError:
        return False
    return True


def test_anatomy_cuts_the_gradient_after_each_stage():
    """Each cut is a valid module whose loss_grad stops earlier: the last
    statement before the cut differs from stage to stage, and the whole text
    computes the real gradient."""
    anatomy = _load("anatomy")
    run = _load("run")
    from exprgrad.compiler.pipeline import build
    task = run.make_mlp(2, [3, 1], 2, seed=4)
    text, functions = build(run.mlp_source(task), "mlp.expr")
    gradient = next(f for f in functions if f.name == "loss_grad")
    cuts = anatomy.cuts(gradient)
    assert len(cuts) == len(anatomy.STAGES)
    lengths = [len(c) for c in cuts]
    assert lengths == sorted(set(lengths))
    for cut in cuts[:-1]:
        namespace = {}
        exec(compile(cut, "<cut>", "exec"), namespace)
        assert namespace["loss_grad"](*task.params) == 0.0
    whole, generated = {}, {}
    exec(compile(cuts[-1], "<whole>", "exec"), whole)
    exec(compile(text, "<generated>", "exec"), generated)
    assert whole["loss_grad"](*task.params) == generated["loss_grad"](*task.params)
    assert anatomy.main(["--repeat", "1"]) == 0


def test_passes_table_turns_each_optimisation_off():
    """Turning a pass off changes what it should: identities off builds more
    nodes, inlining off names every value, and every variant's table row is
    printed; afterwards the compiler is as before."""
    passes = _load("passes")
    import exprgrad
    source, name, args = passes.workloads(quick=True)["README expr"]
    before = exprgrad.emit(source)
    rows, grads = {}, {}
    for variant, (options, op_table) in passes.VARIANTS.items():
        with op_table():
            rows[variant], grads[variant] = passes.build(source, name, options)
    for variant, us in passes.time_interleaved(grads, args, rounds=1).items():
        rows[variant]["us"] = us
    base = rows["all passes"]
    assert rows["no identities or strength reduction"]["nodes"] > base["nodes"]
    assert rows["no inlining of single-use values"]["statements"] > base["statements"]
    assert exprgrad.emit(source) == before
    mlp_source, mlp_name, _ = passes.workloads(quick=True)["wide MLP"]
    options, op_table = passes.VARIANTS["tanh' recomputed (1/cosh²), no reuse"]
    with op_table():
        recomputed, _ = passes.build(mlp_source, mlp_name, options)
    assert recomputed["statements"] > passes.build(mlp_source, mlp_name)[0]["statements"]
    total, hits = passes.sharing(source)
    assert 0 < hits < total
    assert "| README expr | all passes |" in passes.table({"README expr": rows})
