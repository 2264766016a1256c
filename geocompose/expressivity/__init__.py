"""Expressivity suites: can a blueprint tell apart geometric graphs built to be hard?

Reproduces the synthetic experiments of Joshi, Bodnar, Mathis, Cohen and Liò, "On the
Expressive Power of Geometric Graph Neural Networks" (ICML 2023) for any blueprint:
k-chains (depth), counterexamples to 2- and 3-body descriptors (body order) and
rotationally symmetric structures (tensor order). Two protocols: the paper's trained
classifier (:func:`train_pair`) and a quick, deterministic random-init
distinguishability test (:func:`distinguish`); the IGWL and GWL tests as exact oracles
(:mod:`geocompose.expressivity.wl`).

>>> from geocompose.expressivity import run_suite
>>> rows = run_suite(["blueprints/schnet.yaml"], "chains", layers=[3], quick=True)  # doctest: +SKIP
>>> rows[0].cell()                                                                   # doctest: +SKIP
'✗ =0'
"""

from geocompose.expressivity.classifier import (
    Classifier,
    Head,
    PairClassifier,
    blueprint_data,
    build_classifier,
    compile_classifier,
    pair_batches,
)
from geocompose.expressivity.invariants import (
    equal_under_identity,
    is_symmetric_under,
    node_invariants,
)
from geocompose.expressivity.pairs import (
    PAIRS,
    GeometricPair,
    k_chains,
    rotsym_pair,
    three_body_pair,
    two_body_pair,
)
from geocompose.expressivity.protocol import (
    Distinguished,
    Protocol,
    Trained,
    distinguish,
    train_pair,
)
from geocompose.expressivity.suites import (
    ORACLES,
    SUITES,
    Row,
    Suite,
    oracle_rows,
    run_suite,
    suite_pairs,
)
from geocompose.expressivity.wl import (
    OracleResult,
    first_separating_iteration,
    gwl_separates,
    igwl_separates,
)

__all__ = [
    "ORACLES",
    "PAIRS",
    "SUITES",
    "Classifier",
    "Distinguished",
    "GeometricPair",
    "Head",
    "OracleResult",
    "PairClassifier",
    "Protocol",
    "Row",
    "Suite",
    "Trained",
    "blueprint_data",
    "build_classifier",
    "compile_classifier",
    "distinguish",
    "equal_under_identity",
    "first_separating_iteration",
    "gwl_separates",
    "igwl_separates",
    "is_symmetric_under",
    "k_chains",
    "node_invariants",
    "oracle_rows",
    "pair_batches",
    "rotsym_pair",
    "run_suite",
    "suite_pairs",
    "three_body_pair",
    "train_pair",
    "two_body_pair",
]
