"""The verifier must catch planted defects: a checker that cannot fail proves nothing.

Each defect is a user block registered exactly as a user would register a new design,
claiming a guarantee it does not have; the verifier must report the matching check as
FAIL (and only checks that the defect can break).
"""

from typing import Literal

import pytest
import torch

import geocompose
from geocompose.nn.block import Block
from geocompose.nn.embedding.base import Envelope
from geocompose.nn.interaction.base import InteractionParams
from geocompose.nn.ops.message import EdgeView, aggregate
from geocompose.nn.ops.scatter import scatter_sum
from geocompose.registry import REGISTRY, Family, Group, Kind, KnobModel, register
from geocompose.types import FieldType, Level, Signature
from geocompose.types import fields as F
from geocompose.types.irreps import parse_irreps
from geocompose.verification import Verdict, verify


def scalar_block_signature(upstream):
    reads = {
        F.NODE_FEATURES: upstream[F.NODE_FEATURES],
        F.EDGE_INDEX: upstream[F.EDGE_INDEX],
        F.EDGE_VECTORS: upstream[F.EDGE_VECTORS],
        F.POSITIONS: upstream[F.POSITIONS],
        F.BATCH: upstream[F.BATCH],
    }
    return Signature(
        reads=reads, writes={F.NODE_FEATURES: upstream[F.NODE_FEATURES]}, guarantee=Group.O3
    )


class DefectParams(InteractionParams):
    type: Literal["defect"] = "defect"
    kind: Literal["raw_coordinates", "pseudoscalar", "batch_leak", "atom_index"] = "raw_coordinates"


class PlantedDefect(Block):
    """Adds a defect-specific term to the scalar node features; claims O(3) regardless."""

    Params = DefectParams

    @classmethod
    def signature(cls, params, upstream, ctx):
        return scalar_block_signature(upstream)

    def __init__(self, params, upstream, ctx):
        super().__init__(params, upstream, ctx)
        self.lift = torch.nn.Linear(3, self.irreps_in[F.NODE_FEATURES].dim)

    def forward(self, state):
        h = state[F.NODE_FEATURES]
        kind = self.params.kind
        if kind == "raw_coordinates":  # reads absolute coordinates: breaks rotation and translation
            term = self.lift(state[F.POSITIONS])
        elif kind == "pseudoscalar":  # a triple product: rotation-invariant, odd under reflection
            edges = EdgeView.from_state(state)
            vec = state[F.EDGE_VECTORS]
            length = vec.norm(dim=1, keepdim=True)
            a = aggregate(vec * torch.exp(-length), edges)
            b = aggregate(vec * torch.exp(-2 * length), edges)
            c = aggregate(vec * torch.exp(-0.5 * length**2), edges)
            term = (torch.cross(a, b, dim=1) * c).sum(dim=1, keepdim=True).expand_as(h)
        elif kind == "batch_leak":  # normalises with statistics of the whole batch
            term = -h.mean(dim=0, keepdim=True)
        else:  # atom_index: depends on the order atoms are listed in
            term = torch.arange(h.shape[0], dtype=h.dtype).unsqueeze(1).expand_as(h) / 10
        return {F.NODE_FEATURES: h + term}


class StepEnvelopeParams(KnobModel):
    type: Literal["step_claimed_smooth"] = "step_claimed_smooth"


class StepEnvelopeClaimedSmooth(Envelope):
    """A hard cutoff registered as smooth."""

    Params = StepEnvelopeParams

    def of_lengths(self, lengths):
        return (lengths < self.cutoff).to(lengths.dtype)


class CurlForcesParams(KnobModel):
    type: Literal["curl_forces"] = "curl_forces"
    of: str = "energy"


class CurlForces(Block):
    """-dE/dx plus a rotational (curl) field, registered as a derivative readout."""

    Params = CurlForcesParams

    @classmethod
    def signature(cls, params, upstream, ctx):
        return Signature(
            reads={
                params.of: upstream[params.of],
                F.POSITIONS: upstream[F.POSITIONS],
                F.BATCH: upstream[F.BATCH],
                F.CELL: upstream[F.CELL],
            },
            writes={ctx.output: FieldType(parse_irreps("1o"), Level.NODE)},
            guarantee=Group.O3,
        )

    def __init__(self, params, upstream, ctx):
        super().__init__(params, upstream, ctx)
        self.output = ctx.output

    def forward(self, state, keep_graph=True):
        positions = state[F.POSITIONS]
        (grad,) = torch.autograd.grad(state[self.params.of].sum(), positions, retain_graph=True)
        # Equivariant but not a gradient: each atom's offset from its structure's centre,
        # crossed with the structure's summed dipole-like vector.
        counts = scatter_sum(
            torch.ones_like(positions[:, :1]), state[F.BATCH], state[F.CELL].shape[0]
        )
        centre = scatter_sum(positions, state[F.BATCH], state[F.CELL].shape[0]) / counts.clamp(
            min=1
        )
        offset = positions - centre[state[F.BATCH]]
        axis = scatter_sum(
            offset * offset.norm(dim=1, keepdim=True), state[F.BATCH], state[F.CELL].shape[0]
        )
        curl = torch.cross(axis[state[F.BATCH]], offset, dim=1)
        return {self.output: -grad + 0.1 * curl}


@pytest.fixture(scope="module", autouse=True)
def planted():
    register(Kind.INTERACTION, family=Family.INVARIANT, group=Group.O3, body_order=2)(PlantedDefect)
    register(Kind.ENVELOPE, smooth=True)(StepEnvelopeClaimedSmooth)
    register(Kind.READOUT, derivative=True)(CurlForces)
    yield
    REGISTRY.remove(Kind.INTERACTION, "defect")
    REGISTRY.remove(Kind.ENVELOPE, "step_claimed_smooth")
    REGISTRY.remove(Kind.READOUT, "curl_forces")


def blueprint(interactions, envelope="cosine", forces="gradient"):
    return {
        "name": "planted",
        "symmetry": {"group": "O(3)"},
        "graph": {"type": "radius", "cutoff": 4.0},
        "embedding": {
            "species": ["H", "C", "O", "Cu"],
            "node": {"type": "learned", "features": 8},
            "radial": {"type": "gaussian", "num": 8},
            "envelope": {"type": envelope},
        },
        "interactions": [{"type": "schnet", "filters": 8}, *interactions],
        "readout": {"energy": {"type": "sum", "hidden": [8]}, "forces": {"type": forces}},
    }


def verdicts(bp) -> dict[str, Verdict]:
    report = verify(bp, samples=2, seed=0)
    return {c.name: c.verdict for c in report.checks}


def test_clean_model_passes():
    report = verify(blueprint([]), samples=2, seed=0)
    assert report.passed, report.text()


def test_block_reading_raw_coordinates_is_caught():
    v = verdicts(blueprint([{"type": "defect", "kind": "raw_coordinates"}]))
    assert v["rotation"] is Verdict.FAIL
    assert v["translation"] is Verdict.FAIL
    assert v["permutation"] is Verdict.PASS  # per-atom, so order does not matter


def test_reflection_sign_bug_is_caught_and_rotation_still_passes():
    v = verdicts(blueprint([{"type": "defect", "kind": "pseudoscalar"}]))
    assert v["rotation"] is Verdict.PASS
    assert v["reflection"] is Verdict.FAIL


def test_batch_leak_is_caught():
    v = verdicts(blueprint([{"type": "defect", "kind": "batch_leak"}]))
    assert v["batch independence"] is Verdict.FAIL
    assert v["rotation"] is Verdict.PASS


def test_atom_order_dependence_is_caught():
    v = verdicts(blueprint([{"type": "defect", "kind": "atom_index"}]))
    assert v["permutation"] is Verdict.FAIL


def test_hard_cutoff_claimed_smooth_is_caught():
    v = verdicts(blueprint([], envelope="step_claimed_smooth"))
    assert v["continuity at cutoff"] is Verdict.FAIL
    assert v["rotation"] is Verdict.PASS


def test_honest_hard_cutoff_is_measured_not_failed():
    report = verify(blueprint([], envelope="hard"), samples=1, seed=0)
    check = report.check("continuity at cutoff")
    assert check.verdict is Verdict.MEASURED and check.error > 1e-3
    assert report.passed


def test_non_conservative_forces_claimed_as_gradient_are_caught():
    v = verdicts(blueprint([], forces="curl_forces"))
    assert v["conservative forces"] is Verdict.FAIL
    assert v["rotation"] is Verdict.PASS


def knn(bp, k=2, cutoff=3.0):
    """``bp`` on a 2-nearest-neighbour graph: in the molecule of seed 2 one atom's
    second and third neighbours are 2.9e-3 Å apart, so a five-point stencil of step
    1e-3 Å crosses a change of its neighbour set (a kink of the energy)."""
    return {**bp, "graph": {"type": "knn", "k": k, "cutoff": cutoff}}


def test_a_knn_kink_inside_the_stencil_is_left_out_not_failed():
    report = verify(knn(blueprint([])), samples=1, seed=2)
    check = report.check("conservative forces")
    assert check.verdict is Verdict.PASS, report.text()
    assert "molecule 0 left out: the graph changes within the stencil" in check.detail


def test_non_conservative_forces_on_a_knn_graph_are_still_caught():
    v = verdicts(knn(blueprint([], forces="curl_forces"), k=4, cutoff=4.0))
    assert v["conservative forces"] is Verdict.FAIL


def test_assert_symmetry_raises_with_the_report():
    from geocompose.testing import assert_symmetry

    with pytest.raises(geocompose.VerificationFailed, match="reflection"):
        assert_symmetry(blueprint([{"type": "defect", "kind": "pseudoscalar"}]))


# ------------------------------------------------------------------------------ blame


def test_blame_names_the_block_that_reads_absolute_positions():
    report = verify(blueprint([{"type": "defect", "kind": "raw_coordinates"}]), samples=2, seed=0)
    blame = report.blame
    assert (blame.index, blame.block, blame.knob, blame.field) == (
        4,
        "defect",
        "interactions[1]",
        "node_features",
    )
    assert blame.action == "rotation" and blame.error > 1e-3
    # The header no longer says the derivation holds.
    header = report.text().splitlines()[0]
    assert "derived O(3) does not hold: block 4 (defect, interactions[1])" in header


def test_blame_under_reflection_for_a_pseudoscalar_sign_bug():
    report = verify(blueprint([{"type": "defect", "kind": "pseudoscalar"}]), samples=2, seed=0)
    assert (report.blame.index, report.blame.action) == (4, "reflection")


def test_no_blame_for_a_sound_model_or_a_non_symmetry_failure():
    assert verify(blueprint([]), samples=1, seed=0).blame is None
    leak = verify(blueprint([{"type": "defect", "kind": "batch_leak"}]), samples=1, seed=0)
    assert not leak.passed and leak.blame is None
    assert "derived O(3)," in leak.text().splitlines()[0]
