"""Fuzzing the compiler with generated and corrupted programs.

Valid programs (tests/fuzz_strategies.py) must compile, and their emitted
values and gradients must agree with an independent model evaluated with
mpmath at 30 digits (derivatives by mpmath's numerical differentiation).
Corrupted programs must either compile or raise `CompileError` located
inside the text; no other exception may escape, and nothing may hang.

The example budget is small here; `python tests/fuzz_long.py --minutes 5`
runs the same properties for as long as you like (docs/reliability.md).
"""

from __future__ import annotations

import os
import random
import signal
from contextlib import contextmanager

import mpmath
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import exprgrad
from exprgrad.runtime.modules import module_from_text

from fuzz_strategies import (Program, data_program, data_programs, mutate, mutated_programs,
                             programs, random_program, stress_program, stress_programs)

EXAMPLES = int(os.environ.get("EXPRGRAD_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HANG_SECONDS = 60  # far beyond any real compile of these small programs


@contextmanager
def no_hang(seconds: int = HANG_SECONDS):
    """Fail (instead of blocking the suite) if the body runs for minutes."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def alarm(signum, frame):
        raise AssertionError(f"still running after {seconds} s: the compiler hangs")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --- properties shared with fuzz_long.py -----------------------------------------
def assert_located(error: exprgrad.CompileError, source: str, filename: str) -> None:
    """The error points inside the text: a line of the file, a column of that
    line (or just past its end), and says so in its first line."""
    lines = source.split("\n")
    assert 1 <= error.line <= len(lines), (error.line, len(lines), str(error))
    assert 1 <= error.column <= len(lines[error.line - 1]) + 1, (error.column, str(error))
    assert str(error).startswith(f"{filename}:{error.line}:{error.column}: error: ")
    assert error.message and "internal" not in error.message.lower()
    assert not error.message.startswith("could not parse")  # the parser's last resort


def compile_or_refuse(source: str, filename: str = "fuzz.expr") -> object:
    """Compile `source`; a refusal must be a located CompileError.  Returns
    the module, or None if refused."""
    try:
        text = exprgrad.emit(source, filename)
    except exprgrad.CompileError as error:
        assert_located(error, source, filename)
        return None
    assert text == exprgrad.emit(source, filename)  # deterministic
    return module_from_text(text, filename)


ARITHMETIC_ERRORS = (ArithmeticError, ValueError)  # what generated code may raise on numbers


def call_stress_functions(program, module, rnd: random.Random) -> int:
    """Call each function of a compiled stress program (and its gradient) at
    a random point: numbers out, or an arithmetic error; returns the calls."""
    calls = 0
    for name, shapes, scalar in program.functions:
        args = [_random_value(shape, rnd) for shape in shapes]
        for fn_name in (name, name + "_grad") if scalar else (name,):
            fn = getattr(module, fn_name, None)
            if fn is None:
                continue
            try:
                fn(*args)
            except ARITHMETIC_ERRORS:
                pass
            calls += 1
    return calls


def call_data_functions(program, modules: dict, rnd: random.Random) -> int:
    """Call each function of a compiled data-axis program (and its gradient)
    with random data of a few lengths, one per size name: numbers out or an
    arithmetic error, and the array target (when compiled) agreeing with
    the plain one.  Returns the calls."""
    calls = 0
    for name, shapes, scalar in program.functions:
        for _ in range(2):
            lengths = {d: rnd.randint(0, 4) for shape in shapes for d in shape
                       if isinstance(d, str)}
            args = [_random_value([lengths.get(d, d) for d in shape], rnd, tame=True)
                    for shape in shapes]
            for fn_name in (name, name + "_grad") if scalar else (name,):
                results = {}
                for target, module in modules.items():
                    try:
                        results[target] = _floats(getattr(module, fn_name)(*args))
                    except ARITHMETIC_ERRORS:
                        results[target] = None
                    calls += 1
                plain = results.pop("python")
                for target, other in results.items():
                    if plain is not None and other is not None:
                        assert len(plain) == len(other), (fn_name, target, plain, other)
                        assert all(_agree(a, b) for a, b in zip(plain, other)) or \
                            _ill_conditioned(getattr(modules["python"], fn_name), args, plain), \
                            (fn_name, target, args, plain, other)
    return calls


def _ill_conditioned(fn, args, values: list) -> bool:
    """Whether `fn` (giving `values` at `args`) is too ill-conditioned there
    for two targets to agree: nudging the inputs by a relative 1e-9 moves
    a result by more than ILL_CONDITIONED times that.  The targets round
    differently and equally well (a product of n equal factors is a loop in
    one and a power in the other), and a slope like that of `sin(1e3 *
    u^4)` at u = 1000 turns one rounding into a different value."""
    step = 1e-9
    signs = random.Random(0)
    nudged = _map_numbers(args, lambda x: x + signs.choice((-1, 1)) * step * max(1.0, abs(x)))
    try:
        moved = _floats(fn(*nudged))
    except ARITHMETIC_ERRORS:
        return True  # a raise a nudge away is an edge of the domain
    return any(not _agree(a, b) and not abs(a - b) <= ILL_CONDITIONED * step * (1 + abs(a))
               for a, b in zip(values, moved))


def _map_numbers(value, f):
    """`value` (a number or nested lists of numbers) with f applied to each number."""
    if isinstance(value, list):
        return [_map_numbers(v, f) for v in value]
    return f(value)


def _floats(value) -> list:
    """A result (number, sequence, tuple of them, NumPy arrays) as one flat list."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [x for part in value for x in _floats(part)]
    return [float(value)]


def _agree(a: float, b: float) -> bool:
    if a != a or b != b:
        return a != a and b != b
    if abs(a) == float("inf") or abs(b) == float("inf"):
        return a == b
    return abs(a - b) <= 1e-9 * (1 + abs(a) + abs(b))


def _random_value(shape, rnd: random.Random, tame: bool = False):
    if not shape and tame:
        return rnd.choice([0.0, 1.0, -1.5, 2.0, rnd.uniform(-3, 3), rnd.uniform(-3, 3)])
    if not shape:
        return rnd.choice([0.0, 1.0, -1.5, 2.0, 1e300, -1e-300, rnd.uniform(-3, 3)])
    return [_random_value(shape[1:], rnd, tame) for _ in range(shape[0])]


# Past this slope a function is too ill-conditioned at the point (sin of a
# huge argument, say) for double results to meet the 1e-8 tolerance.
ILL_CONDITIONED = 1e6


def refused_as_designed(source: str) -> bool:
    """A generated valid program may compute a constant too large for a
    float (exp(961) from its constants), which the language refuses."""
    try:
        exprgrad.emit(source, "fuzz.expr")
    except exprgrad.CompileError as error:
        return "is too large for a float" in error.message
    return False


def check_gradients(program: Program, module, rnd: random.Random, tries: int = 4) -> int:
    """Compare every scalar function's value and gradient with the model at a
    random point away from kinks; returns how many functions were compared."""
    compared = 0
    for info in program.functions:
        point = _point(info, rnd, tries)
        if point is None:
            continue
        env, args = point
        try:
            value, grads = getattr(module, info["name"] + "_grad")(*args)
        except OverflowError:
            continue  # the model grew past float range at this point
        with mpmath.workdps(30):
            want = info["value"].value(env)
            wrt = info["wrt"] or [p for p, _ in info["params"]]
            by_name = dict(zip([p for p, _ in info["params"]], info["param_symbols"]))
            assert len(grads) == len(wrt)
            pairs = []  # (name, emitted partial, the model's slope)
            for name, got in zip(wrt, grads):
                symbols = by_name[name]
                flat_got = got if isinstance(symbols, list) else [got]
                flat_symbols = symbols if isinstance(symbols, list) else [symbols]
                assert len(flat_got) == len(flat_symbols)
                pairs += [(name, g, mpmath.diff(lambda t: info["value"].value({**env, s.key: t}),
                                                env[s.key]))
                          for g, s in zip(flat_got, flat_symbols)]
            if any(abs(slope) > ILL_CONDITIONED for _, _, slope in pairs):
                continue  # rounding the inputs to doubles alone moves the value too much
            assert _close(value, want), (program.source, info["name"], args, value, want)
            for name, g, slope in pairs:
                assert _close(g, slope), (program.source, info["name"], name, args, g, slope)
        compared += 1
    return compared


def _point(info, rnd: random.Random, tries: int):
    """Arguments (and the model's environment) at which no kink is near zero."""
    for _ in range(tries):
        env, args = {}, []
        for symbols in info["param_symbols"]:
            group = symbols if isinstance(symbols, list) else [symbols]
            values = [round(rnd.uniform(-2, 2), 6) for _ in group]
            env.update({s.key: mpmath.mpf(v) for s, v in zip(group, values)})
            args.append(values if isinstance(symbols, list) else values[0])
        with mpmath.workdps(30):
            if all(abs(k.value(env)) > 1e-6 for k in info["kinks"]):
                return env, args
    return None


def _close(got: float, want) -> bool:
    return abs(mpmath.mpf(got) - want) <= 1e-8 * (1 + abs(want))


# --- the suite's budget -------------------------------------------------------------
@FUZZ
@given(programs(), st.integers(0, 2 ** 32 - 1))
def test_valid_programs_compile_and_their_gradients_match_the_model(program, seed):
    with no_hang():
        module = compile_or_refuse(program.source)
    if module is None and refused_as_designed(program.source):
        return
    assert module is not None, program.source
    check_gradients(program, module, random.Random(seed))


@FUZZ
@given(mutated_programs())
def test_corrupted_programs_compile_or_raise_a_located_compile_error(source):
    with no_hang():
        compile_or_refuse(source)


@FUZZ
@given(st.text(max_size=300))
def test_random_text_raises_only_compile_errors(source):
    with no_hang():
        compile_or_refuse(source)


@FUZZ
@given(st.lists(st.sampled_from(
    ["f", "(", ")", "x", "=", "def", ":", "\n", "    ", "return", "[", "]", "2", ",", "+", "**",
     "for", "in", "range", "sum", "if", "else", ">", "diff", "check", "==", "where", "wrt",
     "1e999", "\t", "#", "-", "not", "and", "w[3]", "within", "grad"]), max_size=40))
def test_token_soup_raises_only_compile_errors(tokens):
    source = " ".join(tokens)
    with no_hang():
        compile_or_refuse(source)


def test_a_one_element_array_with_a_long_name_emits_valid_python():
    """Once emitted as `(name_0,,) = ...`: the unpacking line wrapped."""
    name = "hidden_layer_bias_vector_" * 7 + "01"
    module = compile_or_refuse(f"f({name}[1]) = 2*{name}[0]\n")
    assert module.f([1.5]) == 3.0


@FUZZ
@given(stress_programs(), st.integers(0, 2 ** 32 - 1))
def test_stress_programs_compile_or_raise_a_located_compile_error(program, seed):
    """Power towers, float-range constants, deep diff nesting, nested
    reductions, long names: compiled (and the emitted text compiled) or
    refused with a located error; compiled functions raise only arithmetic
    errors."""
    with no_hang():
        module = compile_or_refuse(program.source)
        if module is not None:
            call_stress_functions(program, module, random.Random(seed))


@FUZZ
@given(data_programs(), st.integers(0, 2 ** 32 - 1))
def test_data_axis_programs_compile_and_both_targets_agree(program, seed):
    """Size-name parameters, maps, reductions, shifted indices, nested
    runtime loops, conditionals, calls and checks: compiled or refused with
    a located error; the plain and array targets agree where both run."""
    with no_hang():
        module = compile_or_refuse(program.source)
        if module is None:
            return
        modules = {"python": module}
        if _numpy_present():
            modules["array"] = module_from_text(
                exprgrad.emit(program.source, "fuzz.expr", target="array"), "fuzz.expr")
        call_data_functions(program, modules, random.Random(seed))


def _numpy_present() -> bool:
    import importlib.util
    return importlib.util.find_spec("numpy") is not None


def test_the_data_generator_reaches_each_construct():
    text = "\n".join(data_program(random.Random(seed)).source for seed in range(200))
    for construct in ["[n]", "[n][2]", "[m]", "for k in range(n)]", "range(1, n)", "k - 1",
                      "k + 1", "range(n - 1)", "for j in range(", "sum(", "prod(", "max(",
                      "min(", "len(", " if ", "g0(", "avg(", "check ", "diff(", " wrt ",
                      "exp(u)", "X[k][i]"]:
        assert construct in text, construct


def test_the_stress_generator_reaches_each_edge():
    text = "\n".join(stress_program(random.Random(seed)).source for seed in range(300))
    for construct in ["^2^", "**", "1e308", "4.9e-324", "diff(diff(diff(diff(", "prod(",
                      "max(", "mean(", "sum(sum(", "_" * 0 + "hidden_layer_bias_vector_" * 8,
                      "logsumexp(", "log_softmax(", "softmax(", "dot(", "check "]:
        assert construct in text, construct


def test_the_generator_covers_the_language():
    """The valid-program generator really produces each construct (so the
    properties above exercise them)."""
    text = "\n".join(random_program(random.Random(seed)).source for seed in range(300))
    for construct in ["def ", "return", " += ", " -= ", " *= ", " /= ", " for ", "range(",
                      "sum(", "prod(", "len(", " if ", " else ", " and ", " or ", "not ",
                      "diff(", "grad(", " wrt ", "check ", "where", "within", "min(", "max(",
                      "relu(", "abs(", "[", "^", "**", "pow(", "sqrt(", "# a comment",
                      "logsumexp(", "softmax(", "log_softmax(", "dot(", "mean("]:
        assert construct in text, construct


@pytest.mark.parametrize("seed", range(25))
def test_mutations_of_the_lecture_example(seed):
    source = open(os.path.join(os.path.dirname(__file__), "..", "examples",
                               "lecture.expr")).read()
    rnd = random.Random(seed)
    with no_hang():
        compile_or_refuse(mutate(source, rnd), "lecture.expr")


# Programs the long run found; each once broke the compiler.
FOUND = [
    (1000380, "a conditional's branch used a value defined only in another branch's block"),
    (12001653, "an ill-conditioned point (slope 7.6e6): skipped, doubles cannot meet 1e-8"),
    (12024318, "an ill-conditioned point (slope -1.4e9) reached through logsumexp"),
]


@pytest.mark.parametrize("seed, what", FOUND)
def test_programs_found_by_the_long_run(seed, what):
    rnd = random.Random(seed)
    program = random_program(rnd, depth=rnd.choice([2, 3, 3, 4]))
    module = compile_or_refuse(program.source)
    assert module is not None
    check_gradients(program, module, rnd)


# Data-axis programs the long run found: both targets run them and agree.
FOUND_DATA = [
    (1800010347, "sin(1e3 * z) of a product z near 1e12, a loop in one target and a power in "
                 "the other: an ill-conditioned point, skipped"),
    (1800014003, "an invariant sum over an empty range inside other loops was the number 0.0, "
                 "which a deeper loop indexed"),
]


@pytest.mark.parametrize("seed, what", FOUND_DATA)
def test_data_programs_found_by_the_long_run(seed, what):
    if not _numpy_present():
        pytest.skip("the array target needs NumPy")
    rnd = random.Random(seed)
    program = data_program(rnd)
    modules = {target: module_from_text(exprgrad.emit(program.source, "fuzz.expr",
                                                      target=target), "fuzz.expr")
               for target in ("python", "array")}
    assert call_data_functions(program, modules, rnd) > 0


def test_only_an_ill_conditioned_point_excuses_two_targets_disagreeing():
    import math

    def steep(u):
        return math.sin(1e3 * u[0] ** 4)
    assert _ill_conditioned(steep, [[1000.0]], [steep([1000.0])])
    assert not _ill_conditioned(lambda u: 3 * u[0] + 1, [[2.0]], [7.0])
    assert not _ill_conditioned(lambda u: [math.exp(x) for x in u], [[1.0, 2.0]],
                                [math.e, math.exp(2)])


@pytest.mark.parametrize("size", ["import", "None", "len", "math", "xp", "float"])
def test_a_size_name_the_generated_code_uses_is_a_located_error(size):
    """Once emitted as `import = len(value)` (not Python) or `xp = len(v)`
    (the array namespace shadowed): a size name is the generated code's
    variable for the length."""
    source = f"f(v[{size}]) = sum(v) * 2\n"
    with pytest.raises(exprgrad.CompileError, match="cannot be a size name") as caught:
        exprgrad.emit(source, "fuzz.expr")
    assert_located(caught.value, source, "fuzz.expr")


# Found by the long run (tests/test_guarded_loops.py has their property tests).
def test_diff_in_a_data_axis_function_called_with_a_constant():
    module = exprgrad.compile("def f(s, v[n]):\n    return sum(diff(v[k]*s, s) for k in range(n))\n"
                              "g(x) = f(1, [x, 3])\n")
    assert module.g(2.0) == 5.0
    assert module.g_grad(2.0) == (5.0, (1.0,))


def test_check_of_a_max_whose_iterations_all_tie():
    report = exprgrad.check("f(s, u[n]) = max((u[k + 1] if u[k + 1] > 1.5 else s) "
                            "for k in range(n - 1)) * s\n", timeout=2.0)
    assert "FAILED" not in {item.status for item in report.items}
