"""MACE in geocompose against mace-torch, same hyperparameters, same structures.

Hyperparameters (issue 6): hidden ``128x0e + 128x1o`` (the last layer writes ``128x0e``
only, as mace-torch does), spherical harmonics ``max_ell = 3``, correlation 3, 2
interactions, ``r_max = 5`` Å, 8 Bessel functions with a p = 5 polynomial envelope,
radial MLP ``[64, 64, 64]``, species-dependent self-connection, a 16-unit nonlinear
energy readout. Structures: fcc Cu with 64 and 512 atoms (primitive cell 4^3 and 8^3,
rattled 0.05 Å) and ethanol. float32, graph built once and reused (both models
compute edge vectors from positions in each call). Timed by ``benchmarks/harness.py``:
medians (with quartiles) of interleaved calls after warm-up, for the forward pass
(energy, no gradients) and forward + forces, ratio ours / mace-torch.

mace-torch pins e3nn 0.4.4 and geocompose uses e3nn 0.6, so they cannot share a
Python environment: this script times geocompose in-process and runs *itself* under
the mace venv (``--engine mace-torch``, default ``/work/venvs/mace/bin/python``,
created with ``python -m venv /work/venvs/mace && pip install torch==2.13.0
mace-torch``) on the same structures, written to a temporary extxyz file.

Run: ``python benchmarks/mace.py [--threads 1] [--repeats 7] [--profile]``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

SPECIES = ["H", "C", "O", "Cu"]
CUTOFF = 5.0
AVG_NEIGHBOURS = 20.0  # fixed for both (mace-torch computes it from training data)
DEFAULT_REFERENCE = "/work/venvs/mace/bin/python"


def structures():
    import ase.build

    cu64 = ase.build.bulk("Cu", "fcc", a=3.61) * (4, 4, 4)
    cu512 = ase.build.bulk("Cu", "fcc", a=3.61) * (8, 8, 8)
    cu64.rattle(0.05, seed=0)
    cu512.rattle(0.05, seed=1)
    ethanol = ase.build.molecule("CH3CH2OH")
    ethanol.rattle(0.02, seed=2)
    return {"ethanol": ethanol, "cu64": cu64, "cu512": cu512}


def blueprint(forces: bool) -> dict:
    mace = {
        "type": "mace",
        "correlation": 3,
        "tensor_product": {"l_max": 3},
        "radial_hidden": [64, 64, 64],
        "avg_neighbours": AVG_NEIGHBOURS,
    }
    readout = {"energy": {"type": "sum", "hidden": [16], "activation": "silu"}}
    if forces:
        readout["forces"] = {"type": "gradient", "of": "energy"}
    return {
        "name": "mace-benchmark",
        "symmetry": {"group": "O(3)"},
        "graph": {"type": "radius", "cutoff": CUTOFF},
        "embedding": {
            "species": SPECIES,
            "node": {"type": "learned", "features": 128},
            "radial": {"type": "bessel", "num": 8},
            "envelope": {"type": "polynomial", "p": 5},
            "angular": {"l_max": 3},
        },
        # The last layer writes 128x0e only, as mace-torch's (the same modules as two
        # entries, the second with scalar features).
        "interactions": [
            mace | {"features": "128x0e + 128x1o", "repeat": 2, "last_writes_scalars": True}
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


def serve_reference(atoms_by_name) -> None:
    """mace-torch, inside the mace venv: a :class:`harness.Worker` child, called one
    call at a time by the parent run."""
    channel, sys.stdout = sys.stdout, sys.stderr  # replies only on the real stdout
    # This file is benchmarks/mace.py: drop its folder from the path so `import mace`
    # finds mace-torch, not this script.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    import numpy as np
    import torch

    # e3nn 0.4.4 loads its own constants.pt, which pickles `slice`; torch >= 2.6 loads
    # weights-only by default and refuses that global unless allowlisted.
    torch.serialization.add_safe_globals([slice])
    from e3nn import o3
    from mace import data, modules, tools
    from mace.tools import torch_geometric

    torch.manual_seed(0)
    z = [1, 6, 8, 29]
    model = (
        modules.ScaleShiftMACE(
            r_max=CUTOFF,
            num_bessel=8,
            num_polynomial_cutoff=5,
            max_ell=3,
            interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
            interaction_cls_first=modules.interaction_classes[
                "RealAgnosticResidualInteractionBlock"
            ],
            num_interactions=2,
            num_elements=len(z),
            hidden_irreps=o3.Irreps("128x0e + 128x1o"),
            MLP_irreps=o3.Irreps("16x0e"),
            atomic_energies=np.zeros(len(z)),
            avg_num_neighbors=AVG_NEIGHBOURS,
            atomic_numbers=z,
            correlation=3,
            gate=torch.nn.functional.silu,
            radial_MLP=[64, 64, 64],
            atomic_inter_scale=1.0,
            atomic_inter_shift=0.0,
        )
        .float()
        .eval()
    )
    table = tools.AtomicNumberTable(z)
    calls, edges = {}, {}
    for name, atoms in atoms_by_name.items():
        config = data.config_from_atoms(atoms)
        graph = data.AtomicData.from_config(config, z_table=table, cutoff=CUTOFF)
        loader = torch_geometric.dataloader.DataLoader([graph], batch_size=1, shuffle=False)
        batch = next(iter(loader)).to_dict()
        batch = {
            k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v
            for k, v in batch.items()
        }

        def forward(batch=batch):
            with torch.no_grad():
                model(batch, compute_force=False)

        def forward_forces(batch=batch):
            model(batch, compute_force=True)["forces"].sum().item()

        calls[f"{name}/forward"] = forward
        calls[f"{name}/forward+forces"] = forward_forces
        edges[name] = int(batch["edge_index"].shape[1])
    weights = sum(p.numel() for p in model.parameters())
    harness.serve(calls, {"weights": weights, "edges": edges}, channel)


def profile_ours(atoms, rows: int = 12) -> str:
    """Where geocompose spends forward+forces time: per module (hooks) and per op."""
    import collections

    import torch
    from torch.profiler import ProfilerActivity, profile

    import geocompose

    model = geocompose.compile(blueprint(forces=True), dtype=torch.float32, seed=0).eval()
    batch = geocompose.Batch.from_ase([atoms], dtype=torch.float32)
    model(batch)
    spent: dict[str, float] = collections.defaultdict(float)

    def pre(module, args):
        module._start = time.perf_counter()

    def post(module, args, result):
        spent[module._label] += time.perf_counter() - module._start

    hooks = []
    for name, module in model.named_modules():
        if name.count(".") in (1, 2) and name.startswith("blocks."):
            module._label = f"{name} ({type(module).__name__})"
            hooks += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    start = time.perf_counter()
    model(batch)
    total = time.perf_counter() - start
    for hook in hooks:
        hook.remove()
    lines = [
        f"forward of forward+forces on {len(atoms)} atoms: {total * 1e3:.0f} ms; modules (forward only):"
    ]
    for label, seconds in sorted(spent.items(), key=lambda kv: -kv[1])[:rows]:
        lines.append(f"  {seconds * 1e3:9.1f} ms  {label}")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model(batch)["forces"].sum().item()
    lines.append("ops (forward + backward):")
    lines.append(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))
    return "\n".join(lines)


def main() -> None:
    harness.peer_main(
        __doc__,
        __file__,
        "mace-torch",
        DEFAULT_REFERENCE,
        title="MACE: geocompose against mace-torch",
        venv="its own venv, e3nn 0.4.4",
        structures=structures,
        ours_calls=ours_calls,
        serve_reference=serve_reference,
        weights_line=lambda ours, theirs: (
            f"weights: geocompose {ours['weights']:,}, mace-torch {theirs['weights']:,}"
        ),
        profile=lambda _: profile_ours(structures()["cu64"]),
    )


if __name__ == "__main__":
    main()
