"""The backward pass as data: one `Step` per operation, in the order
backpropagation visits them, and the final `Gradient` of each parameter.

An `Explanation` prints as the lecture's hand calculation (`str()`), shows
as a table in Jupyter (`_repr_html_`) and turns into JSON (`to_json()`).
The builders (`from_dag`, `from_values`) compute the numbers; `assemble`
turns what they computed into steps, with the contributions a value used
more than once sums up.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict, dataclass, field

from .formulas import format_number


@dataclass
class Flow:
    """What one input of an operation receives: the local derivative of the
    operation with respect to it, times the operation's gradient."""

    input: str
    local: str  # the local derivative as a formula ("f", "1 - o * o"); "" if unknown
    local_value: object
    contribution: object
    position: int  # which input of the operation (x * x has x at 0 and 1)


@dataclass
class Use:
    """One contribution to a value's gradient: from the operation `by`."""

    by: str
    contribution: object


@dataclass
class Step:
    number: int
    name: str
    definition: str  # "d = e + c"
    location: str | None  # "examples/lecture.expr:11"
    value: object
    grad: object  # d result / d this value, complete once the step is reached
    uses: list[Use]  # the contributions summed into `grad` (empty for the result)
    rule: str  # the rule in words
    flows: list[Flow]


@dataclass
class Gradient:
    name: str
    value: object
    uses: list[Use]


@dataclass
class Explanation:
    result: str  # the name of what is differentiated (L)
    title: str  # "L at a=2, b=-3, c=10, f=-2 (examples/lecture.expr)"
    value: object
    steps: list[Step]
    gradients: list[Gradient]
    omitted: int = 0  # steps left out (max_steps)
    wrt: str | None = None
    max_steps: int | None = None

    # --- text --------------------------------------------------------------
    def __str__(self) -> str:
        lines = [f"Backpropagation through {self.title}.",
                 f"{self.result} = {format_number(self.value)}. Each step below is an "
                 "operation, from the result back to the inputs; its gradient "
                 f"d{self.result}/d... is complete when the step is reached.", ""]
        explained_sum = False
        for step in self.steps:
            lines += self._step_lines(step, not explained_sum)
            explained_sum = explained_sum or len(step.uses) > 1
            lines.append("")
        if self.omitted:
            lines += [f"... {self.omitted:,} more step{'s' if self.omitted > 1 else ''} not "
                      f"shown (at most {self.max_steps:,}: raise --max-steps, max_steps= in "
                      "Python, or follow one input with --wrt NAME)", ""]
        lines.append(f"Gradient of {self.result}" + (f" with respect to {self.wrt}:"
                                                      if self.wrt else ":"))
        for gradient in self.gradients:
            lines.append(f"  d{self.result}/d{gradient.name} = {format_number(gradient.value)}"
                         + _sum_note(gradient.uses, self.result, gradient.name))
            if len(gradient.uses) > 1 and not explained_sum:
                lines.append("    " + _why_plus_equals(self.result, gradient.name,
                                                       gradient.uses))
                explained_sum = True
        if not self.gradients:
            lines.append("  (no inputs)")
        return "\n".join(lines)

    def _step_lines(self, step: Step, explain_sum: bool) -> list[str]:
        r = self.result
        where = f"    [{step.location}]" if step.location else ""
        lines = [f"{step.number}. {step.definition} = {format_number(step.value)}{where}"]
        if not step.uses:
            lines.append(f"   d{r}/d{r} = 1 (the result itself: backpropagation starts here)")
        elif len(step.uses) == 1:
            lines.append(f"   d{r}/d{step.name} = {format_number(step.grad)}")
        else:
            lines += _sum_lines(step, r, explain_sum)
        if not step.flows:
            return lines
        lines.append(f"   local: {_local_text(step)}")
        lines.append(f"          ({step.rule})")
        lines.append("   chain rule:")
        repeated = _has_repeated_input(step)
        for flow in step.flows:
            local = f"d{step.name}/d{flow.input}" + (f" (input {flow.position + 1})"
                                                     if repeated else "")
            lines.append(f"     d{r}/d{flow.input} = d{r}/d{step.name} · {local} = "
                         f"{format_number(step.grad)} · {format_number(flow.local_value)}"
                         f" = {format_number(flow.contribution)}")
        return lines

    # --- data --------------------------------------------------------------
    def to_dict(self) -> dict:
        return _jsonable(asdict(self))

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    # --- Jupyter -----------------------------------------------------------
    def _repr_html_(self) -> str:
        e = html.escape
        r = self.result
        rows = []
        for step in self.steps:
            chain = "<br>".join(
                e(f"d{r}/d{f.input} = {format_number(step.grad)} · "
                  f"{format_number(f.local_value)} = {format_number(f.contribution)}")
                for f in step.flows)
            grad = format_number(step.grad)
            if len(step.uses) > 1:
                grad = " + ".join(format_number(u.contribution) for u in step.uses) + " = " + grad
            rows.append(f"<tr><td>{step.number}</td><td><code>{e(step.definition)}</code></td>"
                        f"<td>{e(step.location or '')}</td><td>{e(format_number(step.value))}"
                        f"</td><td>{e(grad)}</td><td>{e(_local_text(step))}</td>"
                        f"<td>{chain}</td></tr>")
        if self.omitted:
            rows.append(f"<tr><td colspan=7>… {self.omitted:,} more steps not shown</td></tr>")
        grads = "".join(f"<li><code>d{e(r)}/d{e(g.name)} = {e(format_number(g.value))}</code>"
                        f"{e(_sum_note(g.uses, r, g.name))}</li>" for g in self.gradients)
        return (f"<p>Backpropagation through {e(self.title)}</p><table><thead><tr><th>#</th>"
                f"<th>operation</th><th>where</th><th>value</th><th>d{e(r)}/d…</th>"
                f"<th>local derivatives</th><th>chain rule</th></tr></thead><tbody>"
                f"{''.join(rows)}</tbody></table><p>Gradient:</p><ul>{grads}</ul>")


def _local_text(step: Step) -> str:
    parts = []
    repeated = _has_repeated_input(step)
    for flow in step.flows:
        symbol = f"d{step.name}/d{flow.input}"
        if repeated:
            symbol += f" (input {flow.position + 1})"
        value = format_number(flow.local_value)
        shown = value if not flow.local or flow.local == value else f"{flow.local} = {value}"
        parts.append(f"{symbol} = {shown}")
    return f"{step.definition}, so " + " and ".join(parts)


def _has_repeated_input(step: Step) -> bool:
    """Whether an input is used twice by the step's operation (x * x)."""
    return len({f.input for f in step.flows}) < len(step.flows)


def _sum_lines(step: Step, r: str, explain: bool) -> list[str]:
    terms = " + ".join(format_number(u.contribution) for u in step.uses)
    by = ", ".join(u.by for u in step.uses)
    lines = [f"   d{r}/d{step.name} = {terms} = {format_number(step.grad)}: {step.name} is used "
             f"{len(step.uses)} times (by {by}), and the gradients of its uses add up"]
    if explain:
        lines.append("   " + _why_plus_equals(r, step.name, step.uses))
    return lines


def _why_plus_equals(r: str, name: str, uses: list[Use]) -> str:
    last = format_number(uses[-1].contribution)
    return (f"(this is why micrograd's _backward writes `+=`: with `=`, the last use would "
            f"overwrite the others and d{r}/d{name} would be {last})")


def _sum_note(uses: list[Use], r: str, name: str) -> str:
    if not uses:
        return f"  ({r} does not depend on {name})"
    if len(uses) == 1:
        return "  (the result itself)" if name == r else ""
    terms = " + ".join(format_number(u.contribution) for u in uses)
    return f"  = {terms}, the sum over its {len(uses)} uses"


def _jsonable(value):
    """Plain JSON: numbers as numbers; nan, infinities and undefined values
    (which JSON has no number for) as the strings "nan", "inf", "-inf",
    "undefined"."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)  # UNDEFINED


# --- assembling ----------------------------------------------------------------
@dataclass
class NodeRecord:
    """What a builder computed for one operation (in backward order)."""

    key: object
    name: str
    definition: str
    location: str | None
    value: object
    grad: object
    rule: str
    flows: list[tuple[object, Flow]] = field(default_factory=list)  # (input key, flow)


def assemble(result: str, title: str, value, records: list[NodeRecord],
             leaves: list[tuple[object, str, object]], wrt: str | None = None,
             max_steps: int | None = None, result_key=None) -> Explanation:
    """Steps from node records (result first), with each value's uses, and
    the gradients of `leaves` ((key, name, gradient) of every input);
    `result_key` is the result's key, in case the result is an input."""
    uses: dict[object, list[Use]] = {}
    for record in records:
        for key, flow in record.flows:
            uses.setdefault(key, []).append(Use(record.name, flow.contribution))
    shown = records if max_steps is None else records[:max_steps]
    steps = [Step(i, r.name, r.definition, r.location, r.value, r.grad, uses.get(r.key, []),
                  r.rule, [flow for _, flow in r.flows]) for i, r in enumerate(shown, 1)]
    seed = [Use(result, 1.0)]  # what an input that is the result itself receives
    gradients = [Gradient(name, grad, uses.get(key, seed if key == result_key else []))
                 for key, name, grad in leaves]
    return Explanation(result, title, value, steps, gradients, len(records) - len(shown), wrt,
                       max_steps)
