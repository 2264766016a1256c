"""Tensor Field Networks (Thomas et al., arXiv 1802.08219, 2018) as the shared point
convolution with TFN's defaults: no gate, a norm nonlinearity, a plain self-interaction.

TFN's layer is a point convolution with filters ``F(r_ij) = R(|r_ij|) Y(r_ij / |r_ij|)``
coupled to the features by Clebsch–Gordan products, then self-interaction (a linear mix
of channels of equal irrep) and a norm nonlinearity::

    h_i' = eta( W_2 sum_j TP(W_1 h_j, Y(r_ij); R(r_ij)) / sqrt(n) + W_s h_i ) (+ h_i)
    eta(V) = V / |V| * sigmoid(|V| + b)   (l > 0),   act(s)   (scalars)

Nothing here loops over paths: the block is
:class:`~geocompose.nn.interaction.nequip.SphericalConvolution` with other defaults.
"""

from __future__ import annotations

from typing import Literal

from geocompose.nn.activations import Activation
from geocompose.nn.interaction.nequip import ConvolutionParams, SphericalConvolution
from geocompose.nn.interaction.spherical_update import Nonlinearity, SelfConnection
from geocompose.registry import Family, Group, Kind, register


class TFNParams(ConvolutionParams):
    type: Literal["tfn"] = "tfn"
    nonlinearity: Nonlinearity = "norm"
    activation: Activation = "ssp"
    self_connection: SelfConnection = "linear"


@register(Kind.INTERACTION, family=Family.SPHERICAL, body_order=2, group=Group.O3)
class TFNInteraction(SphericalConvolution):
    """Tensor Field Network layer: point convolution, self-interaction, norm nonlinearity.

    ``h_i' = eta( W_2 sum_j TP(W_1 h_j, Y(r_ij); R(r_ij)) / sqrt(n) + W_s h_i ) + h_i``

    Signature: reads ``node_features`` (any irreps), ``edge_angular`` (needs
    ``embedding.angular``), ``edge_radial``, ``edge_envelope``, ``edge_index``,
    ``species`` → writes ``node_features: features``. O(3)-equivariant.

    YAML::

        - {type: tfn, features: "16x0e + 8x1o + 4x2e", repeat: 2,
           tensor_product: {l_max: 2}}

    ``tensor_product: {implementation: so2}`` computes the filter product in each edge's
    rotated frame (eSCN), as for ``nequip`` (see there, with its ``relaxation``).
    """

    Params = TFNParams
