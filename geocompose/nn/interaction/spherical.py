"""Shared machinery of the spherical family (TFN, NequIP, MACE): one edge tensor product.

Every spherical interaction here forms the same per-edge message

    m_ij = sum_paths w_path(r_ij) (h_j (x) Y(r_ij / |r_ij|))_path,    w(r) = MLP(e(r)) * u(r)

with a ``uvu`` (or ``uvw``) tensor product whose paths come from
:func:`~geocompose.nn.ops.paths.enumerate_paths`, per-edge weights from a radial MLP on
``edge_radial`` times the envelope ``edge_envelope``. The blocks differ only in what
they do with the aggregate (``update``), so the tensor-product loop is written once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from e3nn import o3
from pydantic import Field, PositiveFloat, model_validator
from pydantic_core import PydanticCustomError
from torch import nn
from torch.overrides import TorchFunctionMode

from geocompose.nn.activations import Activation, mlp
from geocompose.nn.block import State, run_caches
from geocompose.nn.interaction.base import InteractionParams
from geocompose.nn.ops.channelwise import (  # re-exported (their home before issue 19)
    ChannelwiseProduct,
    channel_major,
    component_major,
)
from geocompose.nn.ops.paths import (
    MixingMode,
    PathPlan,
    TensorProductParams,
    enumerate_paths,
    merge_second_orders,
)
from geocompose.nn.ops.so2 import SO2Product, edge_rotations, wigner_d_matrices
from geocompose.registry.core import FIELD_INPUT_ERROR
from geocompose.types import FieldType, TypeRefusal, require
from geocompose.types import fields as F
from geocompose.types.bounds import Size
from geocompose.types.group import Group
from geocompose.types.irreps import IrrepsField, scalar_part


class SphericalParams(InteractionParams):
    """Knobs every spherical interaction shares.

    Args:
        features: irreps the block writes to ``node_features`` (sorted, scalars first).
        tensor_product: the path knob (:class:`TensorProductParams`).
        radial_hidden: hidden widths of the radial MLP that makes per-edge weights.
        radial_activation: its activation.
        avg_neighbours: typical neighbour count, normalising the aggregated sum.
        last_writes_scalars: the entry's last copy writes only the ``0e`` channels of
            ``features`` (mace-torch's last layer).
    """

    features: IrrepsField = Field(default="16x0e + 8x1o + 4x2e", validate_default=True)
    # Drawn compositions (geocompose.testing) try the SO(2) implementation as well.
    tensor_product: TensorProductParams = Field(
        default_factory=TensorProductParams, examples=[{"implementation": "so2"}]
    )
    radial_hidden: list[Size] = Field(default_factory=lambda: [32])
    radial_activation: Activation = "silu"
    avg_neighbours: PositiveFloat = 8.0
    last_writes_scalars: bool = Field(
        False,
        description="the last copy of this entry writes only the 0e channels of features, "
        "as mace-torch's last layer: when every later reader takes 0e channels (energy "
        "sums, forces as the energy's gradient) the l > 0 channels it would write are read "
        "by nothing, so they are not computed (same energy function, fewer operations); "
        "a reader of vectors is refused by the type check",
    )

    @model_validator(mode="after")
    def _scalars_to_write(self) -> SphericalParams:
        if self.last_writes_scalars and scalar_part(self.features).dim == 0:
            raise PydanticCustomError(
                FIELD_INPUT_ERROR,
                "{message}",
                {
                    "field": "last_writes_scalars",
                    "message": f"the last copy would write no channels: features "
                    f"{self.features} have no 0e; add 0e channels or set it false",
                },
            )
        return self

    def copy_params(self, copy: int) -> SphericalParams:
        if self.last_writes_scalars and copy == self.repeat - 1:
            return self.model_copy(
                update={"features": scalar_part(self.features), "last_writes_scalars": False}
            )
        return self


@dataclass(frozen=True)
class SphericalInputs:
    """What a spherical block reads, type-checked: its declared reads and the edge harmonics
    it uses (``edge_angular`` truncated to ``tensor_product.l_max``)."""

    reads: dict[str, FieldType]
    irreps_node: o3.Irreps
    irreps_sh: o3.Irreps


def spherical_inputs(
    params: SphericalParams, upstream: Mapping, reader: str
) -> SphericalInputs | TypeRefusal:
    """Check the fields a spherical block needs; refuse with the fix when one is missing."""
    if F.EDGE_ANGULAR not in upstream:
        return TypeRefusal(
            f"{reader} reads `{F.EDGE_ANGULAR}` (spherical harmonics of edge directions), "
            "which no earlier block writes",
            "set embedding.angular.l_max (e.g. `angular: {l_max: 2}`)",
        )
    reads = {}
    for name in (
        F.NODE_FEATURES,
        F.SPECIES,
        F.EDGE_INDEX,
        F.EDGE_RADIAL,
        F.EDGE_ENVELOPE,
        F.EDGE_ANGULAR,
    ):
        found = require(upstream, name, reader)
        if isinstance(found, TypeRefusal):
            return found
        reads[name] = found
    sh = reads[F.EDGE_ANGULAR].irreps
    if params.tensor_product.implementation == "so2":
        # The SO(2) product rotates each edge onto the polar axis: it reads the vectors.
        found = require(upstream, F.EDGE_VECTORS, reader)
        if isinstance(found, TypeRefusal):
            return found
        reads[F.EDGE_VECTORS] = found
        if any(mul != 1 for mul, _ in sh):
            return TypeRefusal(
                f"{reader}: tensor_product.implementation so2 needs {F.EDGE_ANGULAR} with one "
                f"copy of each order (harmonics of the edge direction); got {sh}",
                "use implementation: cg with this angular basis",
            )
    l_max = params.tensor_product.l_max
    if l_max is not None and l_max > sh.lmax:
        return TypeRefusal(
            f"{reader} asks for tensor_product.l_max = {l_max}, but {F.EDGE_ANGULAR} stops at l = {sh.lmax}",
            f"raise embedding.angular.l_max to {l_max} or lower tensor_product.l_max",
        )
    if l_max is not None:
        sh = o3.Irreps([(mul, ir) for mul, ir in sh if ir.l <= l_max])
    return SphericalInputs(reads, reads[F.NODE_FEATURES].irreps, sh)


def edge_plan(
    params: SphericalParams, irreps_node: o3.Irreps, irreps_sh: o3.Irreps, irreps_target: o3.Irreps
) -> PathPlan | TypeRefusal:
    """Paths of ``node (x) harmonics`` into the irreps ``irreps_target`` contains."""
    tp = params.tensor_product
    # uvw writes the target irreps directly; uvu writes one segment per path, and so2
    # one per (input segment, output irrep): its paths differing only in l2 are summed.
    plan = enumerate_paths(
        irreps_node,
        irreps_sh,
        irreps_out=irreps_target,
        max_l_out=tp.max_l_out,
        paths=tp.paths,
        mode=tp.mode,
        names=(F.NODE_FEATURES, F.EDGE_ANGULAR),
    )
    if tp.implementation == "so2" and not isinstance(plan, TypeRefusal):
        return merge_second_orders(plan)
    return plan


def edge_guarantee(params: SphericalParams) -> Group:
    """O(3), unless the SO(2) product's relaxation breaks the symmetry (then none)."""
    return Group.NONE if params.tensor_product.relaxation > 0 else Group.O3


# Factories whose result is always floating: without a dtype they make the default one.
_FLOAT_FACTORIES = frozenset(
    {
        torch.empty,
        torch.empty_strided,
        torch.zeros,
        torch.ones,
        torch.rand,
        torch.randn,
        torch.normal,
        torch.linspace,
        torch.logspace,
        torch.eye,
        torch.scalar_tensor,
    }
)
# Factories that infer their dtype from Python data: floating data gets the default one.
_INFERRING_FACTORIES = frozenset({torch.tensor, torch.as_tensor, torch.arange, torch.full})


class _FactoryDtype(TorchFunctionMode):
    """Tensor factories called without a dtype make ``dtype`` tensors where they would make
    the default dtype. A torch function mode lives on this thread's mode stack only, so,
    unlike ``torch.set_default_dtype``, nothing outside the ``with`` block changes."""

    def __init__(self, dtype: torch.dtype):
        super().__init__()
        self.dtype = dtype

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if kwargs.get("dtype") is None:
            if func in _FLOAT_FACTORIES:
                kwargs["dtype"] = self.dtype
            elif func in _INFERRING_FACTORIES and not any(
                isinstance(a, (torch.Tensor, np.ndarray)) for a in args
            ):
                out = func(*args, **kwargs)  # deterministic: safe to make twice
                if out.dtype != torch.get_default_dtype():  # integer or bool data
                    return out
                kwargs["dtype"] = self.dtype
        return func(*args, **kwargs)


@contextmanager
def exact_constants(dtype: torch.dtype = torch.float64) -> Iterator[None]:
    """Build e3nn modules with float64 Clebsch–Gordan constants, whatever the default dtype.

    e3nn computes its coupling coefficients (and draws its initial weights) in the
    default dtype when a module is built, and takes no dtype argument; built in float32
    and cast to float64 later they stay float32-accurate (~1e-8), which measured here as
    1e-10 relative equivariance errors in float64 — too close to the verifier's 1e-9.
    Inside this context tensor factories called without a dtype (``torch.empty(0)``, how
    e3nn reads the default dtype, ``torch.randn``, ...) make ``dtype`` tensors instead,
    on this thread only: the process-wide default dtype is never touched. The compiler
    casts every model to its requested dtype afterwards.

    Args:
        dtype: the dtype of the constants and initial weights (float64: exact).
    """
    with _FactoryDtype(dtype):
        yield


class EdgeTensorProduct(nn.Module):
    """``m_ij = TP(h_j, Y_ij; w = MLP(e(r_ij)) * u(r_ij))``: (E, plan.irreps_out.dim).

    ``uvu`` plans run on :class:`ChannelwiseProduct`, or on
    :class:`~geocompose.nn.ops.so2.SO2Product` with ``implementation: so2`` (both in the
    component-major layout: call :meth:`prepare` on node features before gathering
    senders and :meth:`finish` on the aggregate); ``uvw`` plans on e3nn's TensorProduct
    (both are then identities).

    Args:
        plan: the paths (from :func:`edge_plan`).
        num_radial: width of ``edge_radial``.
        hidden: hidden widths of the radial MLP.
        act: its activation.
        tensor_product: the knob (implementation and relaxation).
    """

    def __init__(
        self,
        plan: PathPlan,
        num_radial: int,
        hidden: list[int],
        act: Activation,
        tensor_product: TensorProductParams,
    ):
        super().__init__()
        self.plan = plan
        self.sh_dim = plan.irreps_in2.dim
        self.so2 = tensor_product.implementation == "so2"
        self.fast = plan.mode is MixingMode.UVU and all(mul == 1 for mul, _ in plan.irreps_in2)
        if self.so2:
            self.tp = SO2Product(plan, tensor_product.relaxation)
        elif self.fast:
            self.tp = ChannelwiseProduct(plan)
        else:
            self.tp = plan.tensor_product(shared_weights=False)
        self.radial = mlp([num_radial, *hidden, self.tp.weight_numel], act)

    def prepare(self, node_features: torch.Tensor) -> torch.Tensor:
        """(N, in1.dim) e3nn layout → the layout ``forward`` takes."""
        return component_major(node_features, self.plan.irreps_in1) if self.fast else node_features

    def finish(self, aggregated: torch.Tensor) -> torch.Tensor:
        """(N, out.dim) aggregate of ``forward``'s output → e3nn layout."""
        return channel_major(aggregated, self.plan.irreps_out) if self.fast else aggregated

    def forward(self, sender_features: torch.Tensor, state: State) -> torch.Tensor:
        """(E, in1.dim) sender features (from :meth:`prepare`) and the state's edge fields
        → (E, out.dim) messages."""
        angular = state[F.EDGE_ANGULAR]
        # (E, weight_numel): smooth to 0 at the cutoff
        weights = self.radial(state[F.EDGE_RADIAL]) * state[F.EDGE_ENVELOPE]
        if angular.shape[-1] != self.sh_dim:  # a lower tensor_product.l_max than the embedding's
            angular = angular[:, : self.sh_dim]
        if self.so2:
            return self.tp(sender_features, angular, weights, edge_wigner(state, self.tp.l_max))
        return self.tp(sender_features, angular, weights)

    def extra_repr(self) -> str:
        return "paths: " + "; ".join(self.plan.describe())


def edge_wigner(state: State, l_max: int) -> list[torch.Tensor]:
    """``D_l(R_ij)`` for l <= ``l_max`` of each edge's rotation onto the polar axis, once
    per run however many layers read them (a run without caches computes them here)."""
    compute = lambda: wigner_d_matrices(edge_rotations(state[F.EDGE_VECTORS]), l_max)
    if F.CACHES not in state:
        return compute()
    return run_caches(state).per_run(("so2_wigner", F.EDGE_VECTORS, l_max), compute)


def sorted_features(features: o3.Irreps) -> o3.Irreps:
    """Canonical order of written features: sorted by (l, p), equal irreps merged."""
    return o3.Irreps(features).sort().irreps.simplify()


def describe_plan(plan: PathPlan) -> tuple[str, ...]:
    """Signature notes: the instantiated paths and their weight counts."""
    return (f"tensor product {plan}",) + tuple(f"path {line}" for line in plan.describe())


__all__ = [
    "ChannelwiseProduct",
    "EdgeTensorProduct",
    "MixingMode",
    "SphericalInputs",
    "SphericalParams",
    "channel_major",
    "component_major",
    "edge_guarantee",
    "edge_plan",
    "edge_wigner",
    "exact_constants",
    "sorted_features",
    "spherical_inputs",
]
