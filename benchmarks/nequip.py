"""NequIP in geocompose against nequip 0.19.1, same widths, same structures.

Like for like (issue 19): the default widths of the two codes differ (nequip's default
``NequIPGNNModel`` is 4 layers of ``32x`` features with a 128-wide radial MLP), so
both sides are built here with one set of widths, nequip through its own
``FullNequIPGNNModel`` builder:

* type embedding: 16 learned scalars per species (H, C, O, Cu);
* 3 interactions: ``16x0e + 8x1o + 4x2e``, ``16x0e + 8x1o + 4x2e``, then ``16x0e``
  (nequip's last layer writes scalars only; the geocompose blueprint here does the
  same), l_max 2 harmonics, ``uvu`` paths, gate nonlinearity (silu / tanh);
* radial: 8 Bessel functions, polynomial envelope p = 6, cutoff 5 Å, one hidden layer
  of 32 (silu) giving the per-edge path weights; avg_neighbours 20 for both;
* self-connection on layers 2 and 3 (nequip has none on the first layer), no residual
  (nequip's default ``convnet_resnet=False``);
* readout: one linear of the 16 scalars to the atomic energy, summed.

The weights still differ, for three reasons the script prints: (1) nequip's
self-connection is a fully connected tensor product with the 16-wide *type embedding*
as its second input, geocompose's is a linear per species (4 species), so nequip's has
16/4 = 4 times the weights (12,544 against 3,136); (2) nequip's radial MLP has no
biases (268 weights in geocompose); (3) geocompose's Bessel frequencies are trainable
(8) and its readout linear has a bias (1). Everything else matches weight for weight.

nequip runs in its own venv (``/work/venvs/nequip``, ``pip install torch==2.13.0
nequip==0.19.1``), so this script times geocompose in-process and runs *itself* under
that python (``--engine nequip``) on the same structures (``benchmarks/mace.py``'s:
ethanol, fcc Cu 64 and 512 atoms, rattled), driven call by call by
``harness.Worker``. float32, graph built once and reused (both models compute edge
vectors from positions in every call); forward = energy without gradients,
forward+forces = energy and its gradient. nequip's float32 model is run the way nequip
runs one: positions go in as float64 (its ``from_ase``) and energy and forces come out
float64, the features in between are float32.

Run: ``python benchmarks/nequip.py [--threads 1] [--repeats 7] [--profile]``
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import harness

SPECIES = ["H", "C", "O", "Cu"]
CUTOFF = 5.0
AVG_NEIGHBOURS = 20.0  # fixed for both (nequip computes it from training data)
EMBED = 16
HIDDEN = "16x0e + 8x1o + 4x2e"
LAST = "16x0e"
RADIAL_HIDDEN = 32
DEFAULT_REFERENCE = "/work/venvs/nequip/bin/python"


def structures():
    """benchmarks/mace.py's structures (loaded by path: a module named ``mace`` could be
    mace-torch)."""
    spec = importlib.util.spec_from_file_location("mace_benchmark", HERE / "mace.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.structures()


def blueprint(forces: bool) -> dict:
    def layer(features: str, self_connection: str) -> dict:
        return {
            "type": "nequip",
            "features": features,
            "tensor_product": {"l_max": 2, "paths": "all", "mode": "uvu"},
            "radial_hidden": [RADIAL_HIDDEN],
            "nonlinearity": "gate",
            "avg_neighbours": AVG_NEIGHBOURS,
            "self_connection": self_connection,
            "residual": False,
        }

    readout = {"energy": {"type": "sum", "hidden": []}}
    if forces:
        readout["forces"] = {"type": "gradient", "of": "energy"}
    return {
        "name": "nequip-benchmark",
        "symmetry": {"group": "O(3)", "strategy": "built_in"},
        "graph": {"type": "radius", "cutoff": CUTOFF},
        "embedding": {
            "species": SPECIES,
            "node": {"type": "learned", "features": EMBED},
            "radial": {"type": "bessel", "num": 8},
            "envelope": {"type": "polynomial", "p": 6},
            "angular": {"l_max": 2},
        },
        "interactions": [
            layer(HIDDEN, "none"),
            layer(HIDDEN, "species"),
            layer(LAST, "species"),
        ],
        "readout": readout,
    }


def ours_calls(atoms_by_name) -> tuple[dict, dict]:
    """geocompose's timed callables, ``"name/pass"`` -> fn, and the edge counts."""
    import torch

    import geocompose

    force_model = geocompose.compile(blueprint(forces=True), dtype=torch.float32, seed=0).eval()
    forward_model = harness.energy_only(blueprint(forces=True), force_model)
    calls, edges = {}, {}
    for name, atoms in atoms_by_name.items():
        batch = geocompose.Batch.from_ase([atoms], dtype=torch.float32)
        edges[name] = int(forward_model.graph.topology(batch)["edge_index"].shape[1])

        def forward(batch=batch):
            with torch.no_grad():
                forward_model(batch)

        def forward_forces(batch=batch):
            force_model(batch)["forces"].sum().item()

        calls[f"{name}/forward"] = forward
        calls[f"{name}/forward+forces"] = forward_forces
    weights = sum(p.numel() for p in forward_model.parameters())
    return calls, {"weights": weights, "edges": edges}


def nequip_model(do_derivatives: bool, seed: int = 0, type_names=SPECIES):
    """nequip's own builder with this file's widths (inside the nequip venv).

    ``per_type_energy_scales`` 1 and shifts 0: fixed buffers (not trainable, no
    weights), so the energy is the network's alone, as in geocompose's model.
    """
    import warnings

    from nequip.model import FullNequIPGNNModel
    from nequip.utils.global_state import set_global_state

    set_global_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FullNequIPGNNModel(
            seed=seed,
            model_dtype="float32",
            r_max=CUTOFF,
            type_names=list(type_names),
            type_embed_num_features=EMBED,
            feature_irreps_hidden=[HIDDEN, HIDDEN, LAST],
            irreps_edge_sh="1x0e + 1x1o + 1x2e",
            radial_mlp_depth=[1, 1, 1],
            radial_mlp_width=[RADIAL_HIDDEN] * 3,
            num_bessels=8,
            polynomial_cutoff_p=6,
            avg_num_neighbors=AVG_NEIGHBOURS,
            per_type_energy_scales=1.0,
            per_type_energy_shifts=0.0,
            do_derivatives=do_derivatives,
        )


def nequip_graph(atoms, type_names=SPECIES):
    """An ``AtomicDataDict`` for one structure: nequip's own ASE conversion, species to
    type mapping and neighbour list (cutoff ``CUTOFF``)."""
    from nequip.data import AtomicDataDict, from_ase
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform

    data = from_ase(atoms)
    data = ChemicalSpeciesToAtomTypeMapper(model_type_names=list(type_names))(data)
    data = NeighborListTransform(r_max=CUTOFF)(data)
    return AtomicDataDict.with_batch_(data)


def serve_reference(atoms_by_name) -> None:
    """nequip, inside its venv: a :class:`harness.Worker` child, called one call at a time."""
    channel, sys.stdout = sys.stdout, sys.stderr  # replies only on the real stdout
    # This file is benchmarks/nequip.py: drop its folder so `import nequip` finds nequip.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    import torch
    from nequip.data import AtomicDataDict

    force_model = nequip_model(do_derivatives=True).eval()
    forward_model = nequip_model(do_derivatives=False).eval()
    forward_model.load_state_dict(force_model.state_dict())
    calls, edges = {}, {}
    for name, atoms in atoms_by_name.items():
        data = nequip_graph(atoms)

        def forward(data=data):
            with torch.no_grad():
                forward_model(dict(data))[AtomicDataDict.TOTAL_ENERGY_KEY].sum().item()

        def forward_forces(data=data):
            force_model(dict(data))[AtomicDataDict.FORCE_KEY].sum().item()

        calls[f"{name}/forward"] = forward
        calls[f"{name}/forward+forces"] = forward_forces
        edges[name] = int(data[AtomicDataDict.EDGE_INDEX_KEY].shape[1])
    weights = sum(p.numel() for p in force_model.parameters())
    parts = {}
    for key, p in force_model.named_parameters():
        part = "self-connection" if ".sc." in key else "other"
        parts[part] = parts.get(part, 0) + p.numel()
    info = {"weights": weights, "weights_by_part": parts, "edges": edges}
    harness.serve(calls, info, channel)


def profile_ours(atoms, rows: int = 12) -> str:
    """Where geocompose spends forward+forces time, per op (torch.profiler)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    import geocompose

    model = geocompose.compile(blueprint(forces=True), dtype=torch.float32, seed=0).eval()
    batch = geocompose.Batch.from_ase([atoms], dtype=torch.float32)
    model(batch)["forces"].sum().item()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            model(batch)["forces"].sum().item()
    return "ours, forward+forces x3, ops:\n" + prof.key_averages().table(
        sort_by="self_cpu_time_total", row_limit=rows
    )


def weights_line(ours: dict, theirs: dict) -> str:
    """Both weight counts, and why they differ (the module docstring)."""
    return (
        f"weights: geocompose {ours['weights']:,}, nequip {theirs['weights']:,} "
        f"(nequip's self-connections {theirs['weights_by_part'].get('self-connection', 0):,}: "
        "a tensor product with the type embedding, where geocompose's is a linear per "
        "species; see the module docstring)"
    )


def main() -> None:
    harness.peer_main(
        __doc__,
        __file__,
        "nequip",
        DEFAULT_REFERENCE,
        title="NequIP: geocompose against nequip",
        venv="its own venv",
        structures=structures,
        ours_calls=ours_calls,
        serve_reference=serve_reference,
        weights_line=weights_line,
        profile=lambda atoms: profile_ours(atoms.get("cu64", next(iter(atoms.values())))),
    )


if __name__ == "__main__":
    main()
