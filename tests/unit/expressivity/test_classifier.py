"""A blueprint becomes a pair classifier: the readout chosen by type, the layers swept,
and the pair's own graph used as the topology."""

from __future__ import annotations

import pytest
import torch
from expressivity_cases import tiny

from geocompose.errors import BlueprintError
from geocompose.expressivity import (
    Head,
    blueprint_data,
    build_classifier,
    compile_classifier,
    k_chains,
    pair_batches,
    rotsym_pair,
)
from geocompose.types import fields as F


def test_invariant_head_pools_scalars_and_layers_set_the_repeat():
    classifier = build_classifier(tiny("schnet"), 3, Head.INVARIANT)
    assert classifier.readout == {"type": "tensor", "irreps": "64x0e", "pool": "sum"}
    assert not classifier.orientation_sensitive
    assert classifier.data["interactions"][0]["repeat"] == 3
    assert list(classifier.data["readout"]) == [F.PAIR_FEATURES]  # energy and forces are gone
    model = compile_classifier(classifier, seed=0)
    assert sum(1 for row in model.model.trace.rows if row.label == "schnet") == 3
    logits = model(pair_batches(model.model, k_chains(4))[0])
    assert logits.shape == (1, 2) and logits.dtype == torch.float64


def test_orientation_head_reads_every_irrep_or_falls_back_to_a_dipole():
    spherical = build_classifier(tiny("tfn"), 1, Head.ORIENTATION)
    assert spherical.readout["type"] == "tensor" and "2e" in spherical.readout["irreps"]
    assert spherical.orientation_sensitive
    cartesian = build_classifier(tiny("painn"), 1, Head.ORIENTATION)
    assert cartesian.readout_name == "tensor 8x0e+8x1o"
    # SchNet has only scalars: a charge dipole is the one orientation-sensitive readout.
    invariant = build_classifier(tiny("schnet"), 1, Head.ORIENTATION)
    assert invariant.readout_name == "dipole (charges)" and invariant.orientation_sensitive


def test_the_classifier_reads_every_channel_of_a_last_layer_that_writes_scalars_only():
    """``last_writes_scalars`` saves what an energy readout does not read; the classifier's
    heads read it, so the sweep turns it off: the head sees the vectors."""
    data = tiny("tfn")
    data["interactions"][0] |= {"repeat": 2, "last_writes_scalars": True}
    oriented = build_classifier(data, 2, Head.ORIENTATION)
    assert oriented.readout["type"] == "tensor" and "1o" in oriented.readout["irreps"]
    assert "last_writes_scalars" not in oriented.data["interactions"][0]
    assert "last_writes_scalars" in data["interactions"][0]  # the caller's data is kept


def test_the_pair_graph_is_the_topology_and_scaled_to_the_cutoff():
    model = compile_classifier(build_classifier(tiny("schnet"), 1, Head.INVARIANT), seed=0)
    pair = k_chains(4)
    for batch, edges in zip(pair_batches(model.model, pair), pair.edges):
        topology = model.model.graph.topology(batch)
        senders, receivers = topology[F.EDGE_INDEX].tolist()
        assert sorted(zip(senders, receivers)) == sorted(edges + tuple((j, i) for i, j in edges))
        assert receivers == sorted(receivers)  # the builders' receiver-sorted contract
        # cutoff 5 over the paper's r_max 10: edges of 5 paper units become 2.5 Å
        lengths = (batch.positions[senders] - batch.positions[receivers]).norm(dim=-1)
        torch.testing.assert_close(lengths, torch.full_like(lengths, 2.5))


def test_blueprint_files_and_errors(tmp_path):
    data = blueprint_data("blueprints/schnet.yaml")
    assert data["name"] == "schnet" and data["interactions"][0]["type"] == "schnet"
    bare = tiny("schnet")
    bare["interactions"] = []
    with pytest.raises(BlueprintError, match="no interactions"):
        build_classifier(bare, 2, Head.INVARIANT)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsymmetry: {group: O(3)}\n")
    with pytest.raises(BlueprintError):
        blueprint_data(bad)


def test_rotsym_stars_fit_inside_any_cutoff():
    model = compile_classifier(build_classifier(tiny("painn"), 1, Head.ORIENTATION), seed=0)
    star, _ = pair_batches(model.model, rotsym_pair(5))
    assert star.positions.shape == (6, 3)
    assert torch.allclose(star.positions.norm(dim=-1)[1:], torch.tensor(0.5, dtype=torch.float64))
