"""The runtime of an array-target module, as real functions.

A generated module must not import exprgrad, so the array printer copies the
source of these functions (`helper_source`) into every module it writes; the
functions here are that text, importable so the suite can test it directly.

What they settle, once for every namespace (NumPy, Dask, JAX, CuPy, PyTorch):

- `_namespace`: which array library the data arguments belong to.  It asks
  `array_api_compat.array_namespace` when array-api-compat is installed (it
  covers NumPy 1.x, PyTorch and Dask, whose arrays have no complete
  `__array_namespace__` of their own), else the arrays' `__array_namespace__`
  (NumPy 2, JAX, CuPy 13).  Lists, tuples and floats are NumPy data.
- `_data`: a data argument as a floating array of that namespace (float32
  stays float32; integers, booleans and lists become float64).
- `_erf`: the error function, which the Array API standard lacks.
- `_safe`: the "safe input" of a conditional's branch, so that the branch not
  taken computes nothing that warns, overflows or poisons a gradient.
"""

from __future__ import annotations

import contextlib
import inspect
import math

try:  # the module's optional dependency, copied verbatim into generated text
    import array_api_compat as _array_api_compat
except ImportError:  # pragma: no cover - depends on the environment
    _array_api_compat = None

_ERF_CACHE: dict = {}


def _namespace(*data):
    """The array namespace of the data arguments (NumPy for lists and numbers)."""
    arrays = [a for a in data if not isinstance(a, (list, tuple, int, float))]
    if not arrays:
        import numpy
        arrays = [numpy.empty(0)]
    if _array_api_compat is not None:
        return _array_api_compat.array_namespace(*arrays)
    spaces = {getattr(a, "__array_namespace__", None) for a in arrays}
    spaces = {space() for space in spaces if space is not None}
    if len(spaces) != 1 or any(not hasattr(a, "__array_namespace__") for a in arrays):
        kinds = sorted({type(a).__module__ + "." + type(a).__name__ for a in arrays})
        raise TypeError(f"no single array namespace for data of type {', '.join(kinds)}; "
                        "install array-api-compat (pip install 'exprgrad[array]')")
    return spaces.pop()


def _data(xp, value, name, dimensions):
    """`value` as an array with `dimensions` axes of a real floating dtype."""
    array = xp.asarray(value)
    if not xp.isdtype(array.dtype, "real floating"):
        array = xp.astype(array, xp.float64)
    if array.ndim != dimensions:
        raise ValueError(f"{name} must have {dimensions} axes, got shape {tuple(array.shape)}")
    return array


def _erf(xp, x):
    """erf, elementwise, from the namespace's own special functions.

    JAX: jax.scipy.special.erf; PyTorch: torch.special.erf; CuPy:
    cupyx.scipy.special.erf; Dask: the NumPy choice, block by block; NumPy:
    scipy.special.erf, or without SciPy `math.erf` element by element (exact,
    and about ten times slower)."""
    name = getattr(xp, "__name__", "")
    if name not in _ERF_CACHE:
        _ERF_CACHE[name] = _erf_function(name)
    return _ERF_CACHE[name](x)


def _erf_function(name):
    """The erf of the namespace called `name` (a module name)."""
    if "jax" in name:
        from jax.scipy.special import erf
        return erf
    if "torch" in name:
        import torch
        return torch.special.erf
    if "cupy" in name:
        from cupyx.scipy.special import erf
        return erf
    if "dask" in name:
        block_erf = _erf_function("numpy")
        return lambda x: x.map_blocks(block_erf, dtype=x.dtype)
    if "numpy" in name:
        try:
            from scipy.special import erf
        except ImportError:
            import numpy
            erf = numpy.vectorize(math.erf, otypes=[numpy.float64])
        return erf
    raise TypeError(f"erf: no implementation for the array namespace {name or '?'}; "
                    "NumPy, Dask, JAX, CuPy and PyTorch have one")


def _safe(xp, taken, *values):
    """Inputs for a branch taken where `taken` holds, the double-where way.

    Arrays keep their elements where the branch is taken; elsewhere they get
    their value at the first element where it is taken, so the branch not
    taken repeats a computation that the branch taken does anyway, and raises
    no warning, no overflow and no nan (`log(x) if x > 0 else 0` at x <= 0).
    The result of the branch is then chosen with `xp.where(taken, ...)` as
    usual, and its gradient stays finite.  Numbers pass through unchanged.
    When no element takes the branch, element 0 stands in."""
    if getattr(taken, "ndim", 0) == 0:  # a number: a condition on sizes or constants
        return values if len(values) != 1 else values[0]
    safe = []
    for value in values:
        if getattr(value, "ndim", 0) == 0:
            safe.append(value)
            continue
        mask, full = xp.broadcast_arrays(taken, value)
        if math.prod(full.shape) == 0:
            safe.append(full)
            continue
        first = xp.argmax(xp.reshape(xp.astype(mask, xp.int8), (-1,)))
        safe.append(xp.where(mask, full, xp.reshape(full, (-1,))[first]))
    return tuple(safe) if len(safe) != 1 else safe[0]


def _dtype(xp, *data):
    """The floating dtype of the results: the data's, promoted (float64 without data)."""
    return xp.result_type(*data) if data else xp.float64


def _quiet(xp, taken):
    """Where a branch's side is computed: under NumPy, if no element takes
    it (so `_safe` had no element to stand in), a context that ignores
    floating-point errors, since none of its values is used; else nothing.
    Other namespaces do not warn (JAX, PyTorch, CuPy), or warn when Dask
    computes."""
    if getattr(xp, "__name__", "") in ("numpy", "array_api_compat.numpy") \
            and not bool(xp.any(taken)):
        import numpy
        return numpy.errstate(all="ignore")
    return contextlib.nullcontext()


def _scalar(xp, value, name, shape, dtype):
    """A parameter without a data axis as an array of `shape` (0-d for a
    number), so every namespace's functions accept it and `jax.jit` can
    trace it; the error names the parameter."""
    array = xp.asarray(value, dtype=dtype)
    if tuple(array.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {list(shape)}, got {list(array.shape)}")
    return array


def _parts(xp, value, name, shape, dtype):
    """A tuple parameter (a tuple result's cotangent; `shape` is a list of
    shapes) as a tuple of arrays, one per part; the error names the part."""
    if not isinstance(shape, list):
        return _scalar(xp, value, name, shape, dtype)
    if not isinstance(value, (tuple, list)) or len(value) != len(shape):
        raise ValueError(f"{name} must be a tuple of {len(shape)} values")
    return tuple(_parts(xp, part, f"{name}[{i}]", s, dtype)
                 for i, (part, s) in enumerate(zip(value, shape)))


def _out(value):
    """A result: a NumPy 0-d array becomes a float; other arrays stay what
    they are (lazy for Dask, traced under jax.jit)."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
        return float(value)
    return value


def _outs(value):
    """A result that copies a part of a large parameter (`w`, `w[3, 5:900]`):
    nested lists of what `_out` gives for each element, the result unpacking
    would give (for NumPy, `tolist` makes the floats at once)."""
    if type(value).__module__ == "numpy":
        return value.tolist()
    return [_outs(row) if getattr(row, "ndim", 0) else _out(row) for row in value]


def _nonempty(value, lengths, axes, where, xp, *taken):
    """`value`, unless a min or max reduces an empty range (its error names
    the line, as the plain target's does).  Where the result has no element
    (the min is of each iteration of an empty loop around it), or a
    reduction under conditions (`taken`, the masks of the If sides around
    it) has none that takes them, no min is taken and its value is never
    used: it reduces a stand-in of zeros instead (nan where that cannot be
    known: a condition traced by `jax.jit`), one long on the reduced `axes`
    and as long as `value` on the others."""
    if all(length > 0 for length in lengths):
        return value
    shape = tuple(max(int(d), 1) if i in axes else int(d)
                  for i, d in enumerate(getattr(value, "shape", ())))
    unused, fill = 0 in shape, 0.0
    if taken and not unused:
        try:
            unused = any(not bool(xp.any(xp.asarray(mask))) for mask in taken)
        except (TypeError, ValueError):  # a traced condition has no truth value
            unused, fill = True, math.nan
    if unused:
        return xp.full(shape, fill, dtype=getattr(value, "dtype", None))
    raise ValueError(f"min or max over an empty range ({where})")


def _sigmoid(xp, x):
    """The logistic function, without overflow for large |x|."""
    e = xp.exp(-xp.abs(x))
    s = 1.0 / (1.0 + e)  # one division: sigmoid(-|x|) is e * sigmoid(|x|)
    return xp.where(x >= 0.0, s, e * s)


def _softplus(xp, x):
    """log(1 + exp(x)), without overflow for large x (the plain target's formula)."""
    return xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))


HELPERS = (_namespace, _data, _dtype, _scalar, _parts, _out, _outs, _nonempty, _erf,
           _erf_function, _safe, _quiet, _sigmoid, _softplus)


def helper_source(names: set[str] | None = None) -> str:
    """The text a generated module needs: the optional import, then the
    helpers (all, or those in `names` and what they call)."""
    wanted = [f for f in HELPERS if names is None or f.__name__ in names
              or f is _erf_function and "_erf" in names]
    parts = ["import contextlib\n\ntry:\n    import array_api_compat as _array_api_compat\n"
             "except ImportError:\n    _array_api_compat = None\n"]
    if _erf in wanted:
        parts.append("_ERF_CACHE = {}\n")
    parts += [inspect.getsource(f) for f in wanted]
    return "\n\n".join(parts)
