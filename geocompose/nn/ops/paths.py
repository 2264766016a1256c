"""Tensor-product paths: the ONE place that decides which ``(l1, l2 -> l3)`` couplings exist.

A Clebsch–Gordan tensor product couples an irrep ``l1 p1`` of the first input with
``l2 p2`` of the second into ``l3 p3`` only when the selection rules hold::

    |l1 - l2| <= l3 <= l1 + l2      (triangle rule)
    p3 = p1 * p2                    (parity rule)

:func:`enumerate_paths` turns two input irreps, a filter (all allowed paths, an explicit
list, a maximum output ``l``, a caller's own pruning rule) and a channel-mixing mode into
a :class:`PathPlan`: typed, frozen path records that compile once into an
``e3nn.o3.TensorProduct`` instruction list (e3nn's ``Instruction`` is the model: the
extension point is data, not code). Every product of the package takes its paths from
here: the edge products of TFN/NequIP/MACE, MACE's symmetric contraction (``uuu``) and
the species self-connection (``uvw``). An explicitly requested path that breaks a
selection rule is refused with a :class:`~geocompose.types.TypeRefusal` that names it
(the parsing of requested paths lives in :mod:`geocompose.nn.ops.path_spec`).

YAML (inside a spherical interaction)::

    tensor_product: {l_max: 2, paths: ["0e x 1o -> 1o", "1o x 1o -> 1e"], max_l_out: 2, mode: uvu}
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Literal

from e3nn import o3
from pydantic import AfterValidator, Field, WithJsonSchema, model_validator

from geocompose.nn.ops.path_spec import PathSpec, PathSpecField, check_spec
from geocompose.registry import KnobModel
from geocompose.types.signature import TypeRefusal

__all__ = [
    "KnobMixingMode",
    "MixingMode",
    "PathPlan",
    "PathSpec",
    "PathSpecField",
    "TensorProductParams",
    "TensorProductPath",
    "allowed",
    "enumerate_paths",
    "merge_second_orders",
]


class MixingMode(str, enum.Enum):
    """How the channels of the two inputs meet in one path.

    ``uvu``: channel ``u`` of input 1 times every ``v`` of input 2 stays in channel ``u``
    (one weight per ``(u, v)``; the per-edge weighted product of NequIP and MACE).
    ``uvw``: every output channel ``w`` mixes all ``(u, v)`` (fully connected; per-edge
    weights measured 3.7 s forward+backward at 10k edges in DESIGN.md, so use it sparingly).
    ``uuu``: channel ``u`` of input 1 times channel ``u`` of input 2 into channel ``u``,
    without weights (both inputs have the same multiplicity): MACE's symmetric
    contraction, whose per-species weights come after the products. Not a knob value:
    ``tensor_product.mode`` takes the weighted modes only.
    """

    UVU = "uvu"
    UVW = "uvw"
    UUU = "uuu"


_KNOB_MODES = (MixingMode.UVU, MixingMode.UVW)


def _weighted_mode(mode: MixingMode) -> MixingMode:
    if mode not in _KNOB_MODES:
        raise ValueError(
            f"mode {mode.value} has no weights; tensor_product.mode takes "
            + " or ".join(m.value for m in _KNOB_MODES)
        )
    return mode


KnobMixingMode = Annotated[
    MixingMode,
    AfterValidator(_weighted_mode),
    WithJsonSchema(
        {
            "type": "string",
            "enum": [m.value for m in _KNOB_MODES],
            "description": "How the channels of the two inputs meet in one path. ``uvu``: "
            "channel ``u`` of input 1 times every ``v`` of input 2 stays in channel ``u`` (one "
            "weight per ``(u, v)``; the per-edge weighted product of NequIP and MACE). ``uvw``: "
            "every output channel ``w`` mixes all ``(u, v)`` (fully connected; per-edge weights "
            "measured 3.7 s forward+backward at 10k edges in DESIGN.md, so use it sparingly).",
        }
    ),
]
"""Pydantic type of ``tensor_product.mode``: a :class:`MixingMode` with weights."""


def allowed(ir1: o3.Irrep, ir2: o3.Irrep, ir3: o3.Irrep) -> bool:
    """The selection rules: triangle on ``l`` and product of parities."""
    return abs(ir1.l - ir2.l) <= ir3.l <= ir1.l + ir2.l and ir1.p * ir2.p == ir3.p


class TensorProductParams(KnobModel):
    """The tensor-product knob of a spherical interaction.

    Args:
        l_max: highest order of the edge harmonics the product uses (default: all that
            ``embedding.angular`` provides; more than it provides is refused).
        paths: ``all`` paths the selection rules allow, or an explicit list such as
            ``["0e x 1o -> 1o", "1o x 1o -> 1e", [1, 2, 1]]``.
        max_l_out: drop paths into outputs of higher order (``no paths into l > 2``).
        mode: ``uvu`` (per-channel, per-edge weights, then a linear mix) or ``uvw``.
        implementation: ``cg`` (the Clebsch–Gordan product, one output segment per path)
            or ``so2`` (eSCN: each edge rotated onto the polar axis, where the product is
            2x2 blocks per ``|m|``; O(L^3) per channel instead of O(L^5); ``uvu`` only).
            ``so2`` sums the paths that differ only in ``l2`` into one output segment,
            and equals the Clebsch–Gordan product of those summed paths exactly.
        relaxation: ``so2`` only: SCN-style relaxed equivariance. Above 0 each block
            ``m >= 1`` gains ``relaxation`` times per-edge weights on the 2x2 maps that do
            not commute with rotations about the edge, and the block guarantees nothing
            (its error is measured, not claimed); 0 builds no such weights (exact O(3)).
    """

    l_max: int | None = Field(default=None, ge=0, le=8)
    paths: Literal["all"] | Annotated[list[PathSpecField], Field(min_length=1)] = "all"
    max_l_out: int | None = Field(default=None, ge=0, le=8)
    mode: KnobMixingMode = MixingMode.UVU
    implementation: Literal["cg", "so2"] = Field(
        "cg",
        description="cg: the Clebsch-Gordan product; so2: the same product (paths differing "
        "only in l2 summed) computed in each edge's rotated frame (eSCN), O(L^3) per channel",
    )
    relaxation: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="so2 only: scale of per-edge weights that break the rotation symmetry "
        "about each edge (SCN-style relaxed equivariance); 0 is exact, above 0 guarantees none",
    )

    @model_validator(mode="after")
    def _so2_needs(self) -> TensorProductParams:
        if self.implementation == "so2" and self.mode is not MixingMode.UVU:
            raise ValueError("implementation so2 computes uvu products only; set mode: uvu")
        if self.relaxation > 0 and self.implementation != "so2":
            raise ValueError("relaxation acts on the SO(2) blocks; set implementation: so2")
        return self


@dataclass(frozen=True)
class TensorProductPath:
    """One instantiated path: segment ``i_in1`` of input 1 with ``i_in2`` of input 2 into
    segment ``i_out`` of the output (e3nn's ``Instruction``, typed)."""

    i_in1: int
    i_in2: int
    i_out: int
    ir_in1: o3.Irrep
    ir_in2: o3.Irrep
    ir_out: o3.Irrep
    mul_in1: int
    mul_in2: int
    mul_out: int
    mode: MixingMode

    @property
    def has_weight(self) -> bool:
        return self.mode is not MixingMode.UUU

    @property
    def weight_numel(self) -> int:
        if self.mode is MixingMode.UUU:
            return 0
        if self.mode is MixingMode.UVU:
            return self.mul_in1 * self.mul_in2
        return self.mul_in1 * self.mul_in2 * self.mul_out

    def instruction(self) -> tuple[int, int, int, str, bool]:
        """The tuple ``o3.TensorProduct`` takes: (i_in1, i_in2, i_out, mode, has_weight)."""
        return (self.i_in1, self.i_in2, self.i_out, self.mode.value, self.has_weight)

    def __str__(self) -> str:
        return f"{self.ir_in1} x {self.ir_in2} -> {self.ir_out}"


@dataclass(frozen=True)
class PathPlan:
    """The paths of one tensor product, ready to build.

    Args:
        irreps_in1, irreps_in2: the inputs (not simplified: path indices refer to them).
        irreps_out: the output. In ``uvu`` mode one segment ``mul_in1 x ir_out`` per path,
            sorted by output irrep; in ``uuu`` mode one segment per path in the order of
            the inputs; in ``uvw`` mode the requested ``irreps_out``.
        paths: the instantiated paths.
        mode: the mixing mode of every path.
        skipped: explicitly requested paths that found no input segment here (e.g. a
            ``1o x 1o -> 1e`` path in a layer whose features are still scalars).
    """

    irreps_in1: o3.Irreps
    irreps_in2: o3.Irreps
    irreps_out: o3.Irreps
    paths: tuple[TensorProductPath, ...]
    mode: MixingMode
    skipped: tuple[str, ...] = ()

    @property
    def weight_numel(self) -> int:
        return sum(p.weight_numel for p in self.paths)

    def instructions(self) -> list[tuple[int, int, int, str, bool]]:
        return [p.instruction() for p in self.paths]

    def tensor_product(self, *, shared_weights: bool = False) -> o3.TensorProduct:
        """The e3nn module; weights come from outside (per edge) unless ``shared_weights``
        (a ``uuu`` plan has none)."""
        return o3.TensorProduct(
            self.irreps_in1,
            self.irreps_in2,
            self.irreps_out,
            self.instructions(),
            shared_weights=shared_weights,
            internal_weights=shared_weights and self.weight_numel > 0,
        )

    def describe(self) -> list[str]:
        """One line per path with its weight count (``geocompose info`` prints these)."""
        lines = [f"{p} [{p.mode.value}, {p.weight_numel} weights]" for p in self.paths]
        lines += [f"{s} [not instantiated: no input segment]" for s in self.skipped]
        return lines

    def __str__(self) -> str:
        return (
            f"{self.irreps_in1} x {self.irreps_in2} -> {self.irreps_out.simplify()} "
            f"({len(self.paths)} paths, {self.mode.value}, {self.weight_numel} weights)"
        )


def enumerate_paths(
    irreps_in1: o3.Irreps,
    irreps_in2: o3.Irreps,
    *,
    irreps_out: o3.Irreps | None = None,
    max_l_out: int | None = None,
    paths: Literal["all"] | Sequence[PathSpec | str | Sequence[int]] = "all",
    mode: MixingMode | str = MixingMode.UVU,
    names: tuple[str, str] = ("input 1", "input 2"),
    keep: Callable[[int, int, o3.Irrep], bool] | None = None,
) -> PathPlan | TypeRefusal:
    """Every path of ``irreps_in1 x irreps_in2`` that the rules and the filter allow.

    Args:
        irreps_in1: first input (node features).
        irreps_in2: second input (edge spherical harmonics).
        irreps_out: ``uvw``: the output irreps (required). ``uvu``: a filter; only paths
            into irreps that ``irreps_out`` contains are kept (None: no filter).
        max_l_out: drop paths into ``l3 > max_l_out``.
        paths: ``"all"`` or explicit :class:`PathSpec` (or their string/list forms).
        mode: :class:`MixingMode`.
        names: how the inputs are named in refusals (``node_features``, ``edge_angular``).
        keep: a caller's own pruning on top of the rules: ``keep(i1, i2, ir3)`` is False for
            a coupling of segment ``i1`` and ``i2`` into ``ir3`` that the caller knows it
            never needs (MACE's contraction: couplings that vanish or cannot reach a target).

    Returns:
        A :class:`PathPlan`, or a :class:`TypeRefusal` naming the first explicit path that
        breaks a selection rule, needs an irrep the second input never has, or yields an
        output irrep the filters exclude; also a refusal when no path survives.
    """
    mode = MixingMode(mode)
    irreps_in1, irreps_in2 = o3.Irreps(irreps_in1), o3.Irreps(irreps_in2)
    if mode is MixingMode.UVW and irreps_out is None:
        raise ValueError("uvw mode needs irreps_out")  # programming error, not user input
    wanted = None if irreps_out is None else {ir for _, ir in o3.Irreps(irreps_out)}

    def keep_out(ir3: o3.Irrep) -> bool:
        return (wanted is None or ir3 in wanted) and (max_l_out is None or ir3.l <= max_l_out)

    specs: list[PathSpec] | None = None
    if paths != "all":
        specs = [PathSpec.parse(s) for s in paths]
        for spec in specs:
            refusal = check_spec(spec, irreps_in2, keep_out, names)
            if refusal is not None:
                return refusal

    # Candidate (i1, i2, ir3) triples in a deterministic order.
    found: list[tuple[int, int, o3.Irrep]] = []
    used: set[PathSpec] = set()
    for i1, (_, ir1) in enumerate(irreps_in1):
        for i2, (_, ir2) in enumerate(irreps_in2):
            for ir3 in ir1 * ir2:  # e3nn yields exactly the allowed outputs
                if not keep_out(ir3) or (keep is not None and not keep(i1, i2, ir3)):
                    continue
                if specs is not None:
                    hits = [s for s in specs if s.matches(ir1, ir2, ir3)]
                    if not hits:
                        continue
                    used.update(hits)
                found.append((i1, i2, ir3))
    skipped = tuple(str(s) for s in specs if s not in used) if specs is not None else ()
    if not found:
        what = "the requested paths" if specs is not None else "the selection rules"
        limits = [f"outputs in {o3.Irreps(irreps_out)}"] if irreps_out is not None else []
        limits += [f"l <= {max_l_out}"] if max_l_out is not None else []
        return TypeRefusal(
            f"no tensor-product path of {names[0]} ({irreps_in1}) x {names[1]} ({irreps_in2}) "
            f"survives {what}"
            + (f" and the output filter ({', '.join(limits)})" if limits else ""),
            "allow more paths, raise max_l_out, or add the irreps these paths produce to the features",
        )

    records: list[TensorProductPath] = []
    if mode is not MixingMode.UVW:
        if mode is MixingMode.UVU:
            # One output segment per path, ordered by output irrep (then by inputs), so the
            # intermediate irreps read sorted. uuu keeps the order of the inputs: the
            # contraction's weights address its segments by position.
            found.sort(key=lambda t: (t[2].l, t[2].p, t[0], t[1]))
        elif any(irreps_in1[i1].mul != irreps_in2[i2].mul for i1, i2, _ in found):
            raise ValueError("uuu mode needs equal multiplicities")  # programming error
        out = []
        for i_out, (i1, i2, ir3) in enumerate(found):
            mul1, mul2 = irreps_in1[i1].mul, irreps_in2[i2].mul
            out.append((mul1, ir3))
            records.append(
                TensorProductPath(
                    i1, i2, i_out, irreps_in1[i1].ir, irreps_in2[i2].ir, ir3, mul1, mul2, mul1, mode
                )
            )
        irreps_final = o3.Irreps(out)
    else:
        irreps_final = o3.Irreps(irreps_out)
        for i1, i2, ir3 in found:
            for i_out, (mul3, ir_o) in enumerate(irreps_final):
                if ir_o == ir3:
                    records.append(
                        TensorProductPath(
                            i1,
                            i2,
                            i_out,
                            irreps_in1[i1].ir,
                            irreps_in2[i2].ir,
                            ir3,
                            irreps_in1[i1].mul,
                            irreps_in2[i2].mul,
                            mul3,
                            mode,
                        )
                    )
    return PathPlan(irreps_in1, irreps_in2, irreps_final, tuple(records), mode, skipped)


def merge_second_orders(plan: PathPlan) -> PathPlan:
    """The same paths, with those that differ only in the second input's order summed
    into one output segment: one ``mul_in1 x ir_out`` segment per ``(i_in1, ir_out)``,
    sorted like a ``uvu`` plan. The SO(2) product computes this sum in one rotated frame
    (:mod:`geocompose.nn.ops.so2`); e3nn's ``TensorProduct`` of the result sums the same
    paths, with its own path normalisation.
    """
    if plan.mode is not MixingMode.UVU:
        raise ValueError("only uvu plans are merged")  # programming error
    keys = sorted({(p.ir_out.l, p.ir_out.p, p.i_in1) for p in plan.paths})
    index = {key: i for i, key in enumerate(keys)}
    irreps_out = o3.Irreps([(plan.irreps_in1[i1].mul, (l, p)) for l, p, i1 in keys])
    records = tuple(
        replace(path, i_out=index[(path.ir_out.l, path.ir_out.p, path.i_in1)])
        for path in plan.paths
    )
    return PathPlan(plan.irreps_in1, plan.irreps_in2, irreps_out, records, plan.mode, plan.skipped)
