"""What verification found: one `Item` per verified thing, and the `Report`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

# Statuses, and whether each one counts as holding.
PROVED = "proved"
NUMERIC = "numerically equal, not proved"
TIME_LIMIT = "not proved in the time limit"  # the numeric comparison it did agreed
AT_POINT = "holds at the point"
FAILED = "FAILED"
UNVERIFIED = "UNVERIFIED"
HOLDS = {PROVED: True, NUMERIC: True, TIME_LIMIT: True, AT_POINT: True, FAILED: False,
         UNVERIFIED: False}


@dataclass
class Item:
    kind: str  # "gradient" or "check"
    line: int
    column: int
    what: str  # e.g. "gradient of L with respect to a", or the check's source text
    status: str
    detail: str = ""  # why it failed, or what was compared
    counterexample: dict | None = None  # {"point": {...}, "lhs"/"rhs" or "emitted"/"expected"}
    diagnosis: list[str] = field(default_factory=list)  # where a hand derivation goes wrong
    branches: tuple[int, int] | None = None  # (taken at a compared point, found in the function)

    @property
    def ok(self) -> bool:
        return HOLDS[self.status]

    def text(self, filename: str) -> str:
        line = f"{filename}:{self.line}: {self.status}: {self.what}"
        if self.detail:
            line += f" — {self.detail}"
        return "\n".join([line] + [f"    {d}" for d in self.diagnosis])


@dataclass
class Report:
    """Truthy iff every item holds (and there was no error)."""

    filename: str
    items: list[Item] = field(default_factory=list)
    error: str | None = None  # a compile error: nothing could be verified

    def __bool__(self) -> bool:
        return self.error is None and all(item.ok for item in self.items)

    @property
    def ok(self) -> bool:
        return bool(self)

    @property
    def failures(self) -> list[Item]:
        return [item for item in self.items if not item.ok]

    def counts(self) -> dict[str, int]:
        counts = {status: 0 for status in HOLDS}
        for item in self.items:
            counts[item.status] += 1
        return counts

    def summary(self) -> str:
        if self.error is not None:
            return f"{self.filename}: nothing verified: {self.error.splitlines()[0]}"
        c = self.counts()
        held = sum(c[status] for status, holds in HOLDS.items() if holds)
        parts = [f"{c[PROVED]} proved", f"{c[NUMERIC]} numerically equal, not proved"]
        parts += [f"{c[TIME_LIMIT]} not proved in the time limit"] if c[TIME_LIMIT] else []
        parts += [f"{c[AT_POINT]} hold at their point"]
        bad = [f"{c[FAILED]} failed"] + ([f"{c[UNVERIFIED]} unverified"] if c[UNVERIFIED] else [])
        verdict = "all hold" if self else "NOT all hold"
        return (f"{self.filename}: {held} of {len(self.items)} hold ({', '.join(parts)}); "
                f"{', '.join(bad)} — {verdict}")

    def text(self) -> str:
        lines = [item.text(self.filename) for item in self.items]
        if self.error is not None:
            lines.append(self.error)
        lines.append(self.summary())
        return "\n".join(lines)

    __str__ = text

    def to_dict(self) -> dict:
        items = []
        for item in self.items:
            entry = asdict(item)
            entry["ok"] = item.ok
            entry["counterexample"] = _numbers(item.counterexample)
            entry["branches"] = (None if item.branches is None else
                                 dict(zip(("covered", "found"), item.branches)))
            items.append(entry)
        return {"file": self.filename, "ok": self.ok, "error": self.error,
                "counts": self.counts(), "summary": self.summary(), "items": items}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)


def _numbers(value):
    """Counterexample values as JSON numbers (null where undefined); the
    text report shows them as written, `at x=0.37`."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if value is None or isinstance(value, bool):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number) if number.is_integer() and abs(number) < 2 ** 53 else number
