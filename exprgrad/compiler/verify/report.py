"""What verification found: one `Item` per verified thing, and the `Report`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

# Statuses, and whether each one counts as holding.
PROVED = "proved"
NUMERIC = "numerically equal, not proved"
AT_POINT = "holds at the point"
FAILED = "FAILED"
UNVERIFIED = "UNVERIFIED"
HOLDS = {PROVED: True, NUMERIC: True, AT_POINT: True, FAILED: False, UNVERIFIED: False}


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
            return "verification stopped: the file does not compile"
        c = self.counts()
        held = c[PROVED] + c[NUMERIC] + c[AT_POINT]
        parts = [f"{c[PROVED]} proved", f"{c[NUMERIC]} numerically equal, not proved",
                 f"{c[AT_POINT]} hold at their point"]
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
            items.append(entry)
        return {"file": self.filename, "ok": self.ok, "error": self.error,
                "counts": self.counts(), "summary": self.summary(), "items": items}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)
