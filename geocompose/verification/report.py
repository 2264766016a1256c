"""What the verifier measured: one row per check, one report per model."""

from __future__ import annotations

import enum
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class Verdict(str, enum.Enum):
    PASS = "pass"
    FAIL = "FAIL"
    MEASURED = "measured"  # not claimed: the figure is reported, not judged
    SKIPPED = "skipped"


@dataclass(frozen=True)
class CheckResult:
    """One check over all sampled structures.

    Args:
        name: e.g. ``rotation``, ``reflection``, ``conservative forces``.
        error: the largest relative error measured (None when skipped).
        tolerance: the bound a claimed check is held to.
        verdict: pass / FAIL for claims, measured for what is only reported.
        detail: which output and structure gave the largest error, or why skipped.
        mean: mean error over samples, for approximate or unclaimed checks.
    """

    name: str
    error: float | None
    tolerance: float | None
    verdict: Verdict
    detail: str = ""
    mean: float | None = None

    @classmethod
    def judged(
        cls, name: str, error: float, mean: float, detail: str, tolerance: float | None
    ) -> CheckResult:
        """Pass/FAIL against ``tolerance`` for a claim; measured when it is None."""
        if tolerance is None:
            verdict = Verdict.MEASURED
        else:
            verdict = Verdict.PASS if error <= tolerance else Verdict.FAIL
        return cls(name, error, tolerance, verdict, detail, mean)


@dataclass
class VerificationReport:
    """Every check of one model, with what the model claims."""

    name: str
    weights: int
    claim: str
    derived: str
    strategy: str = "built_in"
    checks: list[CheckResult] = field(default_factory=list)
    blame: Any = None  # a verify.blame.Blame when a block is found to break its type

    @property
    def passed(self) -> bool:
        return all(c.verdict is not Verdict.FAIL for c in self.checks)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.verdict is Verdict.FAIL]

    def check(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check named '{name}' (have: {[c.name for c in self.checks]})")

    @property
    def derivation(self) -> str:
        """``derived O(3)``, or, when blame found the block that lied about its type,
        that the derivation does not hold and which block breaks it."""
        if self.blame is None:
            return f"derived {self.derived}"
        return f"derived {self.derived} does not hold: {self.blame.text()}"

    def table(self):
        """A rich Table: check, measured error, tolerance, verdict, detail."""
        from rich.table import Table

        verdict = "[green]verified[/]" if self.passed else "[red]claim violated[/]"
        table = Table(
            title=f"{self.name}: claim {self.claim} via {self.strategy} ({self.derivation}), "
            f"{self.weights:,} weights — {verdict}"
        )
        for column in ("check", "max error", "mean", "tolerance", "verdict", "detail"):
            table.add_column(column)
        style = {
            Verdict.PASS: "green",
            Verdict.FAIL: "red",
            Verdict.MEASURED: "yellow",
            Verdict.SKIPPED: "dim",
        }
        for c in self.checks:
            table.add_row(
                c.name,
                _fmt(c.error),
                _fmt(c.mean),
                _fmt(c.tolerance),
                f"[{style[c.verdict]}]{c.verdict.value}[/]",
                c.detail,
            )
        return table

    def text(self) -> str:
        """Plain-text rendering (for exceptions and logs)."""
        verdict = "verified" if self.passed else "CLAIM VIOLATED"
        lines = [
            f"{self.name}: claim {self.claim} via {self.strategy}, {self.derivation}, {verdict}"
        ]
        for c in self.checks:
            lines.append(
                f"  {c.name:<24} {_fmt(c.error):>10}  tol {_fmt(c.tolerance):>8}  {c.verdict.value:<8} {c.detail}"
            )
        return "\n".join(lines)


    def to_dict(self) -> dict:
        """The whole report as JSON-ready data (infinite errors as the string ``"inf"``)."""
        return {
            "name": self.name,
            "weights": self.weights,
            "claim": self.claim,
            "derived": self.derived,
            "strategy": self.strategy,
            "passed": self.passed,
            "blame": asdict(self.blame) if self.blame is not None else None,
            "checks": [
                {
                    "name": c.name,
                    "error": _json_number(c.error),
                    "mean": _json_number(c.mean),
                    "tolerance": c.tolerance,
                    "verdict": c.verdict.value,
                    "detail": c.detail,
                }
                for c in self.checks
            ],
        }


def write_json(reports: list[dict], path: str | Path) -> None:
    """Write report dicts (``to_dict``, or an error entry) as one JSON document."""
    Path(path).write_text(json.dumps({"reports": reports}, indent=2) + "\n")


def _json_number(x: float | None):
    if x is None or math.isfinite(x):
        return x
    return "inf" if x > 0 else "-inf" if x < 0 else "nan"


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.1e}"
