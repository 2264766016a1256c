"""Any blueprint as a pair classifier: its readout replaced by pooled features + a head.

The suite keeps everything a blueprint chooses (graph cutoff, embeddings, interactions,
symmetry strategy) and replaces its readout dict with one readout named
``pair_features``, a per-structure feature vector; a small head outside the compiled
model turns it into two logits, as in the paper's public code (pool, then an MLP, or a
linear map of the pooled equivariant features for the rotationally symmetric task).
The readout is chosen among candidates by the compiler's type check, first that fits:

* ``invariant`` (k-chains, counterexamples): ``{type: tensor, irreps: 64x0e}`` (a linear
  map of the ``0e`` channels, summed over atoms: "pool then MLP" with the head), else
  ``{type: sum}`` (MLP per atom, then summed).
* ``orientation`` (rotationally symmetric stars): ``{type: tensor}`` with every irrep of
  the final ``node_features`` (e.g. ``16x0e + 8x1o + 4x2e``), else a ``dipole`` (vector
  channels and charges, else charges alone), else the invariant ones: such a model is
  at 50 % by construction, and the table says which readout it got.

``layers`` sets ``repeat`` on the blueprint's *first* interaction entry and keeps the
others as written. ``last_writes_scalars`` is turned off on every entry: it saves the
l > 0 channels that an energy readout does not read, and the classifier's readouts
read them (an entry written with scalar features stays as written). The pair's graphs
are given explicitly, as in the paper: their edge lists are installed as each batch's
topology for the model's graph builder (the builder's cutoff still sets the range of
the radial basis), and the structures are scaled by ``cutoff / 10`` so that edges are
the same fraction of the cutoff as in the paper (``r_max = 10``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import ase
import ase.data
import numpy as np
import torch
from e3nn import o3
from torch import nn

from geocompose.blueprint import load_yaml
from geocompose.compiler import check, compile, interaction_upstream
from geocompose.data import Batch
from geocompose.errors import BlueprintError
from geocompose.expressivity.pairs import PAPER_CUTOFF, GeometricPair
from geocompose.nn.model import GeometricModel
from geocompose.types import fields as F

__all__ = [
    "HEAD_WIDTH",
    "Classifier",
    "Head",
    "PairClassifier",
    "blueprint_data",
    "build_classifier",
    "classifier_blueprint",
    "pair_batches",
    "readout_candidates",
]

HEAD_WIDTH = 64
"""Width of the pooled invariant features and of the head's hidden layer (the paper's
``emb_dim`` for TFN, MACE and GVP-GNN)."""


class Head(str, Enum):
    """What the classifier may read: invariant features, or orientation-sensitive ones."""

    INVARIANT = "invariant"
    ORIENTATION = "orientation"


def blueprint_data(source: str | Path | dict) -> dict:
    """A blueprint as plain data to edit, validated first (located errors for files).

    Raises:
        BlueprintError: the blueprint is invalid or ill-typed.
    """
    if isinstance(source, dict):
        check(source)
        return copy.deepcopy(source)
    check(source)
    data, _ = load_yaml(source)
    return data


def classifier_blueprint(data: dict, layers: int | None, readout: dict) -> dict:
    """A copy of ``data`` with ``layers`` repeats of its first interaction and ``readout``
    as its only output (named ``pair_features``).

    Raises:
        BlueprintError: ``layers`` is given but the blueprint has no interactions.
    """
    out = copy.deepcopy(data)
    if layers is not None:
        if not out.get("interactions"):
            raise BlueprintError(
                f"blueprint '{out.get('name')}' has no interactions, so it has no layers to sweep"
            )
        out["interactions"][0]["repeat"] = int(layers)
    for entry in out.get("interactions") or []:
        entry.pop("last_writes_scalars", None)
    out["readout"] = {F.PAIR_FEATURES: readout}
    return out


def readout_candidates(head: Head, node_irreps) -> list[dict]:
    """Readouts to try, in order, for ``head`` given the final node irreps."""
    invariant = [
        {"type": "tensor", "irreps": f"{HEAD_WIDTH}x0e", "pool": "sum"},
        {"type": "sum", "hidden": [HEAD_WIDTH]},
    ]
    if head is Head.INVARIANT:
        return invariant
    oriented = []
    if node_irreps is not None and any(ir.l > 0 for _, ir in node_irreps):
        oriented.append({"type": "tensor", "irreps": str(node_irreps.simplify()), "pool": "sum"})
    oriented += [
        {"type": "dipole", "charges": True, "vectors": True},
        {"type": "dipole", "charges": True, "vectors": False},
    ]
    return oriented + invariant


def describe_readout(readout: dict) -> str:
    """``tensor 16x0e+8x1o`` / ``sum`` / ``dipole (charges)``: for tables."""
    if readout["type"] == "tensor":
        return f"tensor {readout['irreps'].replace(' ', '')}"
    if readout["type"] == "dipole":
        return "dipole" + ("" if readout.get("vectors", True) else " (charges)")
    return str(readout["type"])


@dataclass(frozen=True)
class Classifier:
    """A type-checked classifier blueprint: the data to compile and what it reads.

    Args:
        data: the blueprint dict to compile.
        readout: the chosen ``pair_features`` readout.
        orientation_sensitive: whether that readout can see orientation at all.
    """

    data: dict
    readout: dict
    orientation_sensitive: bool

    @property
    def readout_name(self) -> str:
        return describe_readout(self.readout)


def build_classifier(data: dict, layers: int | None, head: Head) -> Classifier:
    """Choose the first readout candidate that type-checks on ``data`` at ``layers``.

    Raises:
        BlueprintError: the blueprint itself is ill-typed, or no candidate fits.
    """
    # Field types after the interactions (readouts are not type-checked here).
    upstream = interaction_upstream(classifier_blueprint(data, layers, {"type": "sum"}))
    node = upstream.get(F.NODE_FEATURES)
    errors = []
    for readout in readout_candidates(head, node.irreps if node is not None else None):
        candidate = classifier_blueprint(data, layers, readout)
        try:
            check(candidate)
        except BlueprintError as err:
            errors.append(f"{describe_readout(readout)}: {err}")
            continue
        oriented = readout["type"] == "dipole" or (
            readout["type"] == "tensor" and any(ir.l > 0 for _, ir in o3.Irreps(readout["irreps"]))
        )
        return Classifier(candidate, readout, oriented)
    raise BlueprintError(
        f"no pair_features readout type-checks on blueprint '{data.get('name')}':\n  "
        + "\n  ".join(errors)
    )


class PairClassifier(nn.Module):
    """A compiled blueprint plus a head: ``batch -> (B, 2)`` logits.

    Args:
        model: the compiled classifier blueprint (output ``pair_features``).
        head: ``(B, dim) -> (B, 2)``.
        classifier: what was compiled (for reports).
    """

    def __init__(self, model: GeometricModel, head: nn.Module, classifier: Classifier):
        super().__init__()
        self.model = model
        self.head = head
        self.classifier = classifier

    def features(self, batch: Batch) -> torch.Tensor:
        """(B, dim) pooled features, before the head."""
        return self.model(batch)[F.PAIR_FEATURES]

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.head(self.features(batch))


def make_head(dim: int, invariant: bool, dtype: torch.dtype) -> nn.Module:
    """The paper's heads: MLP on pooled invariants, a linear map of equivariant features."""
    if invariant and dim > 1:
        head = nn.Sequential(nn.Linear(dim, HEAD_WIDTH), nn.ReLU(), nn.Linear(HEAD_WIDTH, 2))
    else:
        head = nn.Linear(dim, 2)
    return head.to(dtype)


def compile_classifier(
    classifier: Classifier, *, seed: int, dtype: torch.dtype = torch.float64
) -> PairClassifier:
    """Compile with seeded weights; the head is seeded from the same seed."""
    model = compile(classifier.data, dtype=dtype, seed=seed)
    dim = model.outputs[F.PAIR_FEATURES].irreps.dim
    with torch.random.fork_rng():
        torch.manual_seed(seed + 7919)  # a stream apart from the blueprint's weights
        head = make_head(dim, not classifier.orientation_sensitive, dtype)
    return PairClassifier(model, head, classifier)


def model_cutoff(model: GeometricModel) -> float:
    """The graph builder's cutoff (every builder has one: the radial basis range), as
    the compiler recorded it on the model's type trace."""
    return model.trace.cutoff


def graph_batch(model: GeometricModel, positions: np.ndarray, edges, dtype: torch.dtype) -> Batch:
    """One structure of the model's first species, with ``edges`` as its topology."""
    atoms = ase.Atoms(
        numbers=[ase.data.atomic_numbers[model.species[0]]] * len(positions), positions=positions
    )
    batch = Batch.from_ase(atoms, dtype=dtype)
    both = [(j, i) for i, j in edges] + [(i, j) for i, j in edges]  # (sender, receiver)
    both.sort(key=lambda e: (e[1], e[0]))  # receiver-sorted, the builders' contract
    index = torch.tensor(both, dtype=torch.int64).reshape(-1, 2).T.contiguous()  # (2, E)
    topology = {
        F.EDGE_INDEX: index,
        F.EDGE_SHIFTS: torch.zeros((index.shape[1], 3), dtype=torch.int64),
    }
    # The batch memoises topology under the builder's key: supplying it first makes the
    # model use the pair's own graph instead of building one from the positions.
    batch.cached(model.graph.cache_key, lambda: topology)
    return batch


def pair_batches(
    model: GeometricModel, pair: GeometricPair, dtype: torch.dtype | None = None
) -> list[Batch]:
    """The pair's two graphs as batches for ``model``, scaled by ``cutoff / 10``.

    Raises:
        BlueprintError: an edge would not fit inside the cutoff.
    """
    dtype = dtype or model.dtype
    scale = model_cutoff(model) / PAPER_CUTOFF
    if pair.max_edge_length() * scale >= model_cutoff(model):
        raise BlueprintError(
            f"pair {pair.name} has edges beyond the cutoff of model '{model.name}'"
        )
    return [
        graph_batch(model, pos * scale, edges, dtype)
        for pos, edges in zip(pair.positions, pair.edges)
    ]
