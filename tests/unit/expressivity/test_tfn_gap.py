"""TFN on the two 4-chains: which nonlinearity reads the two ends together, and how large
the random-init gap is (docs/expressivity.md, "What kept the gaps small", TFN).

The shipped ``tfn.yaml`` (TFN's norm nonlinearity ``V sigmoid(|V| + b)``) reads vector
norms, where the two ends' contributions meet from layer 3, so it separates from 4 layers,
but by a relative gap of 2e-13..3e-11 (float64, seeds 0-2): the norms' difference is a
cross term of vectors ~3e-2, handed back multiplied by ``V``. With the gate of the paper's
TFN (geometric-gnn-dojo ``TFNModel``: gate, no normalisation) no nonlinearity reads a norm
and the features are bit-identical up to 4 layers and separated at 5 (2e-9), the paper's
depth pattern (50 % at 1-4 layers, 80 ± 24.5 at 5).
"""

from __future__ import annotations

from expressivity_cases import chain_gap, shipped


def test_tfn_norm_nonlinearity_separates_4_chains_at_4_layers_by_a_vanishing_gap():
    result = chain_gap(shipped("tfn"), 4)
    assert all(result.separated), result
    assert max(result.relative_gaps) < 1e-8, result  # measured 2e-13..3e-11 (seeds 0-2)


def test_tfn_with_the_papers_gate_is_bit_identical_up_to_4_layers_and_separates_at_5():
    at_4 = chain_gap(shipped("tfn", nonlinearity="gate"), 4)
    assert max(at_4.gaps) == 0.0, at_4
    at_5 = chain_gap(shipped("tfn", nonlinearity="gate"), 5)
    assert all(at_5.separated), at_5
    assert min(at_5.relative_gaps) > 1e-11, at_5  # measured 2e-9 (seeds 0-2)
