"""The type trace of a compiled model: a table to read and a graph to draw."""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from geocompose.types import FieldType
from geocompose.types.claims import Claims
from geocompose.types.group import Group


@dataclass(frozen=True)
class TraceRow:
    """One block: what it read and wrote, its weights and its guarantee."""

    knob: str
    label: str
    reads: dict[str, FieldType]
    writes: dict[str, FieldType]
    guarantee: Group
    weights: int = 0


@dataclass
class TypeTrace(Claims):
    """Block-by-block field types of a model, plus the claims the compiler derived from
    them (:class:`~geocompose.types.claims.Claims`: the group, exactness, smoothness,
    locality and derivatives).

    Everything above the compiler (verifier, expressivity suite, search) reads these
    facts here, never from a built module's params.

    Args:
        name: the blueprint's name.
        rows: one row per block, in pipeline order.
    """

    name: str
    rows: list[TraceRow] = field(default_factory=list)

    @property
    def weights(self) -> int:
        return sum(r.weights for r in self.rows)

    def table(self):
        """A rich Table of the trace."""
        from rich.table import Table

        table = Table(title=f"{self.name}: type trace", show_lines=True)
        for column in ("knob", "block", "reads", "writes", "weights", "guarantee"):
            table.add_column(column, no_wrap=column == "knob")
        for r in self.rows:
            table.add_row(
                r.knob,
                r.label,
                "\n".join(f"{k}: {v}" for k, v in r.reads.items()),
                "\n".join(f"{k}: {v}" for k, v in r.writes.items()),
                f"{r.weights:,}",
                r.guarantee.value,
            )
        return table

    def summary(self) -> str:
        outs = ", ".join(f"{k}: {v}" for k, v in self.outputs.items())
        verdict = "" if self.derived.covers(self.claim) else "  (claim exceeds derived guarantee)"
        kind = "exact" if self.exact else "approximate"
        return (
            f"claim {self.claim.value} ({kind}, via {self.strategy}); derived {self.derived.value}{verdict}; "
            f"smooth={self.smooth}; weights {self.weights:,}; outputs {{{outs}}}"
        )

    def graph(self) -> nx.DiGraph:
        """Blocks and typed fields as a bipartite DiGraph: field → block → field.

        A field overwritten by a block (``node_features`` after each interaction) gets
        a new version node, so the drawing shows the data flow, not a cycle.
        """
        g = nx.DiGraph(name=self.name)
        version: dict[str, str] = {}

        def field_node(name: str, ftype: FieldType, new: bool) -> str:
            if new or name not in version:
                count = sum(1 for n in g.nodes if g.nodes[n].get("field") == name)
                version[name] = f"{name}#{count}" if count else name
                g.add_node(version[name], kind="field", field=name, type=str(ftype))
            return version[name]

        for r in self.rows:
            block = f"[{r.knob}] {r.label}"
            g.add_node(block, kind="block", guarantee=r.guarantee.value, weights=r.weights)
            for name, ftype in r.reads.items():
                g.add_edge(field_node(name, ftype, new=False), block)
            for name, ftype in r.writes.items():
                g.add_edge(block, field_node(name, ftype, new=True))
        return g

    def to_dot(self) -> str:
        """Graphviz DOT text of :meth:`graph` (no graphviz install needed to write it)."""
        g = self.graph()
        lines = [f'digraph "{self.name}" {{', "  rankdir=TB;"]
        for node, data in g.nodes(data=True):
            if data["kind"] == "block":
                label = f"{node}\\n{data['guarantee']}, {data['weights']:,} weights"
                lines.append(
                    f'  "{node}" [shape=box, style=filled, fillcolor="#dde8f7", label="{label}"];'
                )
            else:
                lines.append(
                    f'  "{node}" [shape=ellipse, label="{data["field"]}\\n{data["type"]}"];'
                )
        lines += [f'  "{a}" -> "{b}";' for a, b in g.edges]
        lines.append("}")
        return "\n".join(lines) + "\n"

    def draw_png(self, path: str) -> None:
        """Draw :meth:`graph` with matplotlib, layered top to bottom."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        g = self.graph()
        for layer, nodes in enumerate(nx.topological_generations(g)):
            for n in nodes:
                g.nodes[n]["layer"] = layer
        pos = nx.multipartite_layout(g, subset_key="layer", align="horizontal", scale=4)
        pos = {n: (x, -y) for n, (x, y) in pos.items()}
        height = 1.2 * (1 + max(d["layer"] for _, d in g.nodes(data=True)))
        fig, ax = plt.subplots(figsize=(14, max(6.0, height)))
        blocks = [n for n, d in g.nodes(data=True) if d["kind"] == "block"]
        fields_ = [n for n, d in g.nodes(data=True) if d["kind"] == "field"]
        nx.draw_networkx_edges(g, pos, ax=ax, arrows=True, arrowsize=10, edge_color="#888")
        for nodes, colour in ((blocks, "#dde8f7"), (fields_, "#f5f0dc")):
            labels = {
                n: (
                    n
                    if g.nodes[n]["kind"] == "block"
                    else f"{g.nodes[n]['field']}\n{g.nodes[n]['type']}"
                )
                for n in nodes
            }
            nx.draw_networkx_labels(
                g,
                pos,
                labels,
                ax=ax,
                font_size=7,
                bbox={"boxstyle": "round", "fc": colour, "ec": "#555"},
            )
        ax.set_title(f"{self.name} — claim {self.claim.value}, derived {self.derived.value}")
        ax.axis("off")
        fig.tight_layout()
        fig.savefig(path, dpi=130)
        plt.close(fig)
