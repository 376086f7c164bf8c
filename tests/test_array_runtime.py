"""The array target's runtime (namespace, data, erf, safe branches) and its
op templates, against the plain target's ops, on NumPy and Dask arrays."""

from __future__ import annotations

import math
import sys
import warnings

import pytest
from hypothesis import given, settings, strategies as st

np = pytest.importorskip("numpy")
pytest.importorskip("array_api_compat")

from exprgrad.compiler import array_runtime as rt  # noqa: E402
from exprgrad.compiler.array_ops import (ARRAY_TEMPLATES, PARTIAL_OPS, TEMPLATE_HELPERS,  # noqa: E402
                                         render)
from exprgrad.compiler.ops import OPS  # noqa: E402


def runtime_module() -> dict:
    """The helper text as a generated module gets it, run without exprgrad."""
    scope: dict = {}
    exec(compile("import math\n" + rt.helper_source(), "<array runtime>", "exec"), scope)
    assert not any("exprgrad" in repr(v) for k, v in scope.items() if k != "__builtins__")
    return scope


RT = runtime_module()
RAISE = {"over": "raise", "divide": "raise", "invalid": "raise"}  # underflow stays ignored
XP = RT["_namespace"](np.empty(0))
NUMBER_OPS = [o for o in OPS.values() if o.kind == "number" and o.arity != 0
              and o.name != "where" and not o.loop]


def array_op(op, arrays, attr=None):
    """Evaluate the op's array text on NumPy arrays `a0, a1, …`."""
    names = [f"a{i}" for i in range(len(arrays))]
    text = render(op, [f"({n})" for n in names], attr)
    scope = {**RT, "xp": XP, "math": math, **dict(zip(names, arrays))}
    return np.asarray(eval(text, scope))


def plain_op(op, inputs, attr=None):
    return op.fn(*inputs, *(() if attr is None else (attr,)))


def test_every_op_has_an_array_text_without_the_math_module():
    for op in OPS.values():
        text = render(op, ["a", "b", "c"][:op.arity or 3], attr=2)
        assert "math." not in text, op.name
    for name, helper in TEMPLATE_HELPERS.items():
        assert helper in RT and helper in ARRAY_TEMPLATES[name][0]


def test_every_name_an_array_module_defines_is_reserved():
    from exprgrad.compiler.array_ops import ARRAY_RESERVED
    defined = {k for k in RT if k not in ("__builtins__", "math")}
    assert defined <= ARRAY_RESERVED


def test_the_partial_ops_are_those_the_plain_target_can_raise_in():
    assert {"log", "sqrt", "div", "exp", "pow", "acosh", "ipow"} <= PARTIAL_OPS
    assert not {"add", "mul", "sin", "tanh", "sigmoid", "softplus", "relu", "where"} & PARTIAL_OPS


finite = st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0.0, -0.0, 1.0, -1.0, 710.0])


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=3, max_size=3), st.integers(-3, 4))
def test_array_ops_agree_with_the_plain_ops_or_give_no_finite_number(inputs, k):
    """Where the plain op has a value the array op has the same one (1e-12);
    where the plain op raises, the array op gives nan or ±inf (never a
    silently wrong number), as NumPy does, with its RuntimeWarning."""
    for op in NUMBER_OPS:
        args = inputs[:op.arity or 3]
        attr = k if op.has_attr else None
        try:
            want = plain_op(op, args, attr)
        except (ValueError, ArithmeticError):
            want = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = array_op(op, [np.asarray([a]) for a in args], attr)[0]
        if want is None:
            assert not math.isfinite(got), (op.name, args, attr, got)
            assert op.name in PARTIAL_OPS
            assert caught, (op.name, args)
        elif math.isfinite(want):
            assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-300), (op.name, args, got)


def test_safe_inputs_keep_the_branch_not_taken_quiet_in_values_and_gradients():
    """`log(x)*y if x > 0 else 0` and its gradient y/x at x <= 0: no warning
    (errors raise here), no nan, and the plain target's numbers."""
    x = np.asarray([2.0, 0.0, -1.0, 0.5, -0.0])
    y = np.asarray([1.0, 3.0, 4.0, 2.0, 5.0])
    with np.errstate(**RAISE):
        taken = x > 0.0
        xs = RT["_safe"](XP, taken, x)
        value = XP.where(taken, XP.log(xs) * y, 0.0)
        d_x = XP.where(taken, y / xs, 0.0)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(d_x))
    for i, (xi, yi) in enumerate(zip(x, y)):
        assert value[i] == (math.log(xi) * yi if xi > 0 else 0.0)
        assert d_x[i] == (yi / xi if xi > 0 else 0.0)


def test_without_safe_inputs_the_branch_not_taken_warns():
    """The test above can fail: the plain where does evaluate log(0)."""
    x = np.asarray([2.0, 0.0])
    with np.errstate(**RAISE), pytest.raises(FloatingPointError):
        XP.where(x > 0.0, XP.log(x), 0.0)


def test_safe_inputs_broadcast_pass_numbers_through_and_allow_empty_data():
    taken = np.asarray([[True, False], [False, False]])
    row = np.asarray([4.0, -1.0])
    safe_row, number = RT["_safe"](XP, taken, row, 3.0)
    assert safe_row.tolist() == [[4.0, 4.0], [4.0, 4.0]] and number == 3.0
    empty = np.empty(0)
    assert RT["_safe"](XP, empty > 0, empty) is empty


def test_a_domain_error_in_a_taken_branch_still_raises_under_errstate():
    x = np.asarray([-1.0, 2.0])
    taken = x < 5.0  # taken everywhere: log(-1) is the user's error
    with np.errstate(**RAISE), pytest.raises(FloatingPointError):
        XP.log(RT["_safe"](XP, taken, x))


def test_the_namespace_of_lists_numpy_and_dask():
    da = pytest.importorskip("dask.array")
    assert "numpy" in RT["_namespace"]([1.0, 2.0], 3.0).__name__
    assert "dask" in RT["_namespace"](da.ones(4, chunks=2), 2.0).__name__


def test_without_array_api_compat_the_arrays_own_namespace_is_used(monkeypatch):
    monkeypatch.setitem(RT, "_array_api_compat", None)
    assert RT["_namespace"](np.ones(2)) is np

    class Opaque:
        pass
    with pytest.raises(TypeError, match="array-api-compat"):
        RT["_namespace"](Opaque())


def test_data_arguments_become_floating_arrays_of_the_right_rank():
    array = RT["_data"](XP, [[1, 2], [3, 4]], "X", 2)
    assert array.dtype == np.float64
    assert RT["_data"](XP, np.ones(3, dtype=np.float32), "y", 1).dtype == np.float32
    with pytest.raises(ValueError, match="y must have 1 axes, got shape \\(2, 2\\)"):
        RT["_data"](XP, [[1, 2], [3, 4]], "y", 1)


ERF_POINTS = [-3.0, -0.5, 0.0, 1e-8, 0.3, 2.0, 6.0]


def test_erf_on_numpy_with_and_without_scipy(monkeypatch):
    want = [math.erf(v) for v in ERF_POINTS]
    assert np.allclose(RT["_erf"](XP, np.asarray(ERF_POINTS)), want, rtol=1e-14, atol=0)
    monkeypatch.setitem(sys.modules, "scipy.special", None)  # import fails: no SciPy
    monkeypatch.setitem(RT, "_ERF_CACHE", {})
    fallback = RT["_erf"](XP, np.asarray(ERF_POINTS))
    assert fallback.tolist() == want


def test_erf_on_dask_torch_and_jax():
    want = [math.erf(v) for v in ERF_POINTS]
    da = pytest.importorskip("dask.array")
    x = da.from_array(np.asarray(ERF_POINTS), chunks=3)
    got = RT["_erf"](RT["_namespace"](x), x).compute()
    assert np.allclose(got, want, rtol=1e-14, atol=0)
    for module in ("torch", "jax"):
        try:
            __import__(module)
        except Exception:
            continue
        if module == "torch":
            import torch
            x = torch.tensor(ERF_POINTS, dtype=torch.float64)
        else:
            import jax
            jax.config.update("jax_enable_x64", True)
            x = jax.numpy.asarray(ERF_POINTS)
        got = np.asarray(RT["_erf"](RT["_namespace"](x), x))
        assert np.allclose(got, want, rtol=1e-13, atol=1e-16), module


def test_an_unknown_namespace_has_no_erf():
    with pytest.raises(TypeError, match="mystery"):
        RT["_erf_function"]("mystery")


def test_sigmoid_and_softplus_neither_overflow_nor_differ_from_the_plain_target():
    x = np.asarray([-1000.0, -30.0, -1.0, 0.0, 2.5, 40.0, 1000.0])
    with np.errstate(**RAISE):
        s = RT["_sigmoid"](XP, x)
        p = RT["_softplus"](XP, x)
    for i, v in enumerate(x):
        assert math.isclose(s[i], OPS["sigmoid"].fn(float(v)), rel_tol=1e-15)
        assert math.isclose(p[i], OPS["softplus"].fn(float(v)), rel_tol=1e-15)
