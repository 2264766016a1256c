"""Field names: the only place field-name strings are written.

A model's state between blocks is a mapping from these names to tensors; each block
declares, through its ``Signature``, which of them it reads and writes and with which
``FieldType``. Shapes use N atoms, E edges, B structures.
"""

from __future__ import annotations

from e3nn import o3

from geocompose.types.irreps import FieldType, Level, discrete

# Inputs, filled from a Batch.
POSITIONS = "positions"  # (N, 3) float, 1o, translates
SPECIES = "species"  # (N,) int64, index into the blueprint's species list
ATOMIC_NUMBERS = "atomic_numbers"  # (N,) int64
BATCH = "batch"  # (N,) int64, structure index of each atom
CELL = "cell"  # (B, 3, 3) float, rows are lattice vectors (each a 1o)
PBC = "pbc"  # (B, 3) bool, periodic along each lattice vector

# Written by graph builders.
EDGE_INDEX = "edge_index"  # (2, E) int64, rows (sender j, receiver i); sorted by receiver
EDGE_SHIFTS = "edge_shifts"  # (E, 3) float, integer lattice shifts of the sender image
EDGE_VECTORS = "edge_vectors"  # (E, 3) float, x_j - x_i + shift @ cell; 1o
EDGE_LENGTHS = "edge_lengths"  # (E, 1) float, |edge_vectors|; 0e
# A second, longer-range edge set beside the local one (same conventions, L edges).
LONG_RANGE_EDGE_INDEX = "long_range_edge_index"  # (2, L) int64
LONG_RANGE_EDGE_SHIFTS = "long_range_edge_shifts"  # (L, 3) int64
LONG_RANGE_EDGE_VECTORS = "long_range_edge_vectors"  # (L, 3) float, 1o
LONG_RANGE_EDGE_LENGTHS = "long_range_edge_lengths"  # (L, 1) float, 0e

# Written by the edge embedding.
EDGE_RADIAL = "edge_radial"  # (E, num_basis) float, radial basis of the length; 0e
EDGE_ENVELOPE = "edge_envelope"  # (E, 1) float, smooth cutoff envelope in [0, 1]; 0e
EDGE_ANGULAR = "edge_angular"  # (E, (l_max+1)^2) float, spherical harmonics of the direction

# Node state carried through the interactions.
NODE_FEATURES = "node_features"  # (N, irreps.dim) float
# Coordinates moved by a coordinate-updating interaction (EGNN); they transform as
# positions do, rotating and translating with the atoms.
UPDATED_POSITIONS = "updated_positions"  # (N, 3) float, 1o, translates
# Edge state of directional message passing (DimeNet, GemNet): one message per edge j->i.
EDGE_FEATURES = "edge_features"  # (E, irreps.dim) float, n x 0e (invariant messages)

# Not a feature: the memo tables of this run (geocompose.data.cache.RunCaches), put in
# the state by the model for blocks that share derived data (triplets, their bases).
# Never typed, never read through a Signature.
CACHES = "caches"  # RunCaches: per-batch topology memos + this run's geometry memos

INPUT_TYPES: dict[str, FieldType] = {
    POSITIONS: FieldType(o3.Irreps("1o"), Level.NODE, translates=True),
    SPECIES: discrete(Level.NODE),
    ATOMIC_NUMBERS: discrete(Level.NODE),
    BATCH: discrete(Level.NODE),
    CELL: FieldType(o3.Irreps("3x1o"), Level.STRUCTURE),
    PBC: discrete(Level.STRUCTURE),
}
"""What every model starts with, before the first block."""

# Reference targets a data set carries and the training loss compares outputs with
# (output names of the usual readouts, so `outputs[ENERGY]` pairs with `targets[ENERGY]`).
ENERGY = "energy"  # (B,) float target; (B, 1) model output, eV
FORCES = "forces"  # (N, 3) float, eV/Å
STRESS = "stress"  # (B, 3, 3) float, eV/Å^3, ASE's sign: (1/V) dE/d(strain)
# A strained call (GeometricModel.forward(batch, strain=eps), the batch deformed by
# I + sym(eps)): the energy's gradient readout differentiates the strain in the same
# backward pass as the positions, and writes the strain derivative.
STRAIN = "strain"  # (B, 3, 3) float, zero, requires grad; the state's, never an output
STRAIN_DERIVATIVE = "strain_derivative"  # (B, 3, 3) float, dE/d(strain) in the energy's unit
# Per-layer energy readouts (MACE's E_i = sum_t R_t(h_i^(t))): a layer with
# `layer_readout` adds a linear function of its 0e channels; a pooling readout with
# `layer_energy: true` adds the running sum to its own per-atom terms.
LAYER_ENERGY = "layer_energy"  # (N, 1) 0e, in the energy's unit
# The energy readout's per-atom terms (its `per_atom` output), which sum to the energy.
ATOMIC_ENERGY = "atomic_energy"  # (N, 1) model output; (N,) eV from a Potential

# The readout the expressivity suites put on a blueprint (geocompose.expressivity): pooled
# per-structure features that a classifier head reads to tell two geometric graphs apart.
PAIR_FEATURES = "pair_features"  # (B, irreps.dim) float
