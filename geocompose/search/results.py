"""What a search found: the Pareto front, a plot, every trial's blueprint, the best one.

The front is computed over (validation error, parameter count, latency), all
minimised, from the metrics every trained trial stores; refused (ill-typed), rejected
(symmetry claim violated, training diverged) and early-pruned trials are never ranked.
The chosen blueprint is the front's lowest validation error.

Example::

    rows = trial_rows(study)
    front = pareto_front(rows)
    export_blueprints(rows, "search/trials")
    plot_front(rows, "search/pareto.png")
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from geocompose.search.config import OBJECTIVES
from geocompose.search.sampler import interaction_stack

__all__ = [
    "TrialRow",
    "best",
    "blueprint_path",
    "export_blueprints",
    "pareto_front",
    "pareto_table",
    "plot_front",
    "remove_partial_blueprints",
    "summary",
    "trial_rows",
    "write_blueprint",
]

PARTIAL = ".tmp"


@dataclass
class TrialRow:
    """One trial as the results need it."""

    number: int
    state: str  # complete | refused | rejected | pruned | failed | running | waiting
    blueprint: dict | None
    valid_error: float | None = None
    params: int | None = None
    latency_ms: float | None = None
    reason: str = ""
    attrs: dict = field(default_factory=dict)
    names: tuple[str, ...] = OBJECTIVES

    @property
    def objectives(self) -> tuple[float, ...]:
        """What the front is computed on, each to minimise."""
        values = [self.valid_error, self.params, self.latency_ms]
        if "expressivity" in self.names:
            values.append(-self.attrs.get("expressivity", 0.0))
        return tuple(values)

    def describe(self) -> str:
        """The interaction stack in a few words, e.g. ``painn x2 -> scalars (16 ch)``."""
        stack = interaction_stack(self.blueprint) if self.blueprint else []
        parts = [f"{name} x{repeat}" if repeat != 1 else name for name, repeat in stack]
        node = ((self.blueprint or {}).get("embedding") or {}).get("node") or {}
        width = f" ({node['features']} ch)" if isinstance(node, dict) and "features" in node else ""
        return " -> ".join(parts) + width


def trial_rows(study) -> list[TrialRow]:
    """Every trial of the study, classified."""
    rows = []
    names = tuple(study.user_attrs.get("objectives", OBJECTIVES))
    retried = {
        t.user_attrs["retry_of"]: t.number
        for t in study.get_trials(deepcopy=False)
        if "retry_of" in t.user_attrs
    }
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        if attrs.get("surplus"):
            continue  # started after other workers had taken the study's last trial
        state = trial.state.name.lower()
        reason = ""
        if "refused" in attrs:
            state, reason = "refused", attrs["refused"]
        elif "rejected" in attrs and state == "pruned":
            state, reason = "rejected", attrs["rejected"]
        elif state == "pruned":
            reason = f"median pruner after epoch {attrs.get('pruned_at', '?')}"
        elif state == "fail":
            state = "failed"
            reason = next(
                (attrs[k] for k in ("error", "interrupted", "killed") if k in attrs),
                "its worker stopped sending heartbeats",
            )
            if trial.number in retried:
                reason += f"; re-tried as trial {retried[trial.number]}"
        row = TrialRow(
            trial.number,
            state,
            attrs.get("blueprint"),
            reason=reason,
            attrs=dict(attrs),
            names=names,
        )
        if state == "complete":
            row.valid_error, row.params, row.latency_ms = (
                attrs["valid_error"],
                attrs["params"],
                attrs["latency_ms"],
            )
        rows.append(row)
    return rows


def _dominates(a: TrialRow, b: TrialRow) -> bool:
    return all(x <= y for x, y in zip(a.objectives, b.objectives)) and a.objectives != b.objectives


def pareto_front(rows: list[TrialRow]) -> list[TrialRow]:
    """Complete trials no other complete trial dominates, by validation error; a design
    found twice (duplicate trials) appears once."""
    done = [r for r in rows if r.state == "complete" and "duplicate_of" not in r.attrs]
    front = [r for r in done if not any(_dominates(o, r) for o in done)]
    return sorted(front, key=lambda r: r.valid_error)


def best(rows: list[TrialRow]) -> TrialRow | None:
    """The front's lowest validation error (None when nothing was trained)."""
    front = pareto_front(rows)
    return front[0] if front else None


def summary(rows: list[TrialRow]) -> str:
    """One line: how many trials ended how."""
    counts = Counter(r.state for r in rows)
    order = ("complete", "refused", "rejected", "pruned", "failed", "running", "waiting")
    return ", ".join(f"{counts[s]} {s}" for s in order if counts[s])


def pareto_table(rows: list[TrialRow], title: str = "Pareto front"):
    """A rich table of the front (imported lazily: rich is only needed to print)."""
    from rich.table import Table

    table = Table(title=title)
    for name, justify in (
        ("trial", "right"),
        ("interactions", "left"),
        ("valid error", "right"),
        ("metric", "left"),
        ("params", "right"),
        ("latency ms", "right"),
        ("symmetry err", "right"),
        ("expressivity %", "right"),
    ):
        table.add_column(name, justify=justify)
    for row in pareto_front(rows):
        score = row.attrs.get("expressivity")
        table.add_row(
            str(row.number),
            row.describe(),
            f"{row.valid_error:.4g}",
            row.attrs.get("error_metric", ""),
            f"{row.params:,}",
            f"{row.latency_ms:.1f}",
            f"{row.attrs.get('symmetry_error', 0.0):.1e}",
            "-" if score is None else f"{score:.0f}",
        )
    return table


def export_blueprints(rows: list[TrialRow], directory: str | Path) -> list[Path]:
    """Each complete trial's blueprint as ``trial_NNNN.yaml`` (compiles on its own)."""
    return [
        write_blueprint(directory, row.number, row.blueprint, row.attrs)
        for row in rows
        if row.state == "complete" and row.blueprint is not None
    ]


def blueprint_path(directory: str | Path, number: int) -> Path:
    """Where trial ``number``'s blueprint is written in ``directory``."""
    return Path(directory) / f"trial_{number:04d}.yaml"


def write_blueprint(directory: str | Path, number: int, blueprint: dict, attrs: dict) -> Path:
    """One trained trial's blueprint with its scores in a header comment, replaced
    atomically (a kill leaves the old file or the new one, and at most a
    ``.trial_NNNN.yaml.tmp`` that :func:`remove_partial_blueprints` clears)."""
    path = blueprint_path(directory, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# search trial {number}: {attrs.get('error_metric', 'valid error')} "
        f"{attrs['valid_error']:.6g}, {attrs['params']:,} parameters, "
        f"{attrs['latency_ms']:.2f} ms per structure with forces\n"
    )
    partial = path.with_name(f".{path.name}{PARTIAL}")
    partial.write_text(header + blueprint_yaml(blueprint))
    os.replace(partial, path)
    return path


def remove_partial_blueprints(directory: str | Path) -> list[Path]:
    """Delete what a killed :func:`write_blueprint` left half-written."""
    found = sorted(Path(directory).glob(f".trial_*.yaml{PARTIAL}"))
    for path in found:
        path.unlink(missing_ok=True)
    return found


def blueprint_yaml(blueprint: dict) -> str:
    """A blueprint as block-style YAML in its own key order."""
    return yaml.safe_dump(blueprint, sort_keys=False, default_flow_style=None)


def plot_front(rows: list[TrialRow], path: str | Path, title: str = "") -> Path:
    """Validation error against parameter count, the Pareto front highlighted (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r.state == "complete"]
    front = pareto_front(rows)
    on_front = {r.number for r in front}
    fig, ax = plt.subplots(figsize=(6, 4.2))
    others = [r for r in done if r.number not in on_front]
    ax.scatter(
        [r.params for r in others], [r.valid_error for r in others], c="0.6", label="trained"
    )
    ax.scatter(
        [r.params for r in front],
        [r.valid_error for r in front],
        c="tab:red",
        label="Pareto front (error, params, latency)",
        zorder=3,
    )
    for r in front:
        ax.annotate(
            f"#{r.number} {r.describe()}",
            (r.params, r.valid_error),
            fontsize=7,
            xytext=(4, 4),
            textcoords="offset points",
        )
    ax.set_xscale("log")
    metric = done[0].attrs.get("error_metric", "validation error") if done else "validation error"
    ax.set_xlabel("parameters")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{len(done)} trained trials")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
