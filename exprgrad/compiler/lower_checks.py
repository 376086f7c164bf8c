"""Lowering of a `check`'s `where` clause when the check calls a function
with data axes.

    check loss(w, X, y) == ... where n=3, X=[[1, 2], [3, 4], [5, 6]]

* A `where` value that is a list (`X=[[...], ...]`) is data: the name is
  bound to that array in the check, so the call is lowered at its length
  (unrolled, as any call with fixed-size arguments).
* A `where` number named after a size of a called function (`n=3`) is that
  length.  An argument of the call that is a name the check does not
  otherwise give (`y` above) becomes an array of free variables of that
  length (`y[0]`, `y[1]`, `y[2]`), sampled like any free variable.
* A length given twice that disagrees (`n=3` and an `X` of 4 rows) is a
  located `ShapeError`.
"""

from __future__ import annotations

from ..errors import ShapeError
from ..grammar import ast
from .loops import has_data_axis
from .values import build


class CheckData:
    """Methods of `_Lowering` for the data of a check's `where` clause."""

    def _where_data(self, check: ast.Check, values: dict, scope, free: dict) -> set[str]:
        """Bind the data and free arrays of `check`'s calls in `scope`;
        the `where` names used as lengths (`n=3`) are returned."""
        numbers = {name: value for name, (value, _) in values.items() if isinstance(value, int)}
        sizes: set[str] = set()
        for call in _calls(check):
            callee = self.functions.get(call.func)
            if callee is None or not any(has_data_axis(p.shape) for p in callee.params):
                continue
            lengths = self._given_lengths(callee, call, numbers, values, scope, sizes)
            for p, arg in zip(callee.params, call.args):
                if (has_data_axis(p.shape) and isinstance(arg, ast.Name)
                        and scope.lookup(arg.id) is None and arg.id not in free):
                    shape = tuple(lengths.get(d, d) for d in p.shape)
                    unknown = [d for d in shape if isinstance(d, str)]
                    if unknown:
                        raise ShapeError(
                            f"'{arg.id}' is data of length {unknown[0]} for {call.func}(): "
                            f"give it with 'where {arg.id}=[...]', or its length with "
                            f"'where {unknown[0]}=3' to check at random data", arg.loc)
                    scope.names[arg.id] = self._free_array(arg.id, shape, free)
        return sizes

    def _given_lengths(self, callee, call, numbers, values, scope, sizes) -> dict[str, int]:
        """The callee's size names with a length from `where`: a number
        named after the size, or the length of data given for a parameter."""
        lengths: dict[str, int] = {}
        for d in {d for p in callee.params for d in p.shape if isinstance(d, str)}:
            if d in numbers:
                lengths[d] = self._length_value(numbers[d], d, values[d][1])
                sizes.add(d)
        for p, arg in zip(callee.params, call.args):
            if not (isinstance(arg, ast.Name) and arg.id in values
                    and isinstance(values[arg.id][0], list)):
                continue
            data, binding = values[arg.id]
            for d, length in zip(p.shape, list_lengths(data)):
                if isinstance(d, str) and lengths.setdefault(d, length) != length:
                    raise ShapeError(f"'{arg.id}' has length {length} along '{d}', but '{d}' "
                                     f"is {lengths[d]} here", binding.loc)
        return lengths

    def _length_value(self, node: int, name: str, binding) -> int:
        value = self.g.value(node)
        if value is None or value < 0 or not float(value).is_integer():
            raise ShapeError(f"'where {name}=...' gives the length of a data axis: it must be "
                             "a whole number, 0 or more", binding.loc)
        return int(value)

    def _free_array(self, name: str, shape: tuple, free: dict):
        """An array of free variables, `y[0]`, `y[1]`, ... in the report."""
        def element(idx):
            key = name + "".join(f"[{i}]" for i in idx)
            if key not in free:
                free[key] = self.g.input(("free", name, idx), "_".join([name, *map(str, idx)]))
            return free[key]
        return build(shape, element)


def _calls(check: ast.Check):
    for side in (check.lhs, check.rhs):
        for node in ast.walk(side):
            if isinstance(node, ast.Call):
                yield node


def list_lengths(value) -> list[int]:
    """The lengths of a nested list along its dimensions."""
    lengths = []
    while isinstance(value, list):
        lengths.append(len(value))
        value = value[0] if value else None
    return lengths
