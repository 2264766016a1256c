"""Time and peak memory of forward+forces against system size (fcc Cu at 5 Å).

For each model (the shipped ``blueprints/{schnet,painn,mace}.yaml``, float32, eval
mode) and each size, a fresh child process builds the model and an fcc Cu cell
(a = 3.61 Å, rattled 0.02 Å), builds the graph, resets the kernel's peak-RSS counter
(``/proc/self/clear_refs``), runs forward+forces, and reports the time of the calls
after the first (the harness, ``--repeats``) and the peak resident memory above the
state before the call; the CPU time of the process is printed too (steadier than wall
time on a shared machine). Beside it: geocompose's estimate made *before* the call
(:func:`geocompose.nn.memory.estimate_peak`), which the model uses to refuse a batch
that would not fit. Sizes whose estimate exceeds the available memory are refused
(and printed as such) without running.

``--checkpointing never always`` runs each size plainly and with the interaction
blocks checkpointed (``GeometricModel.checkpointing``; the estimate is then the
checkpointed one).

Usage::

    python benchmarks/scaling.py [--models schnet painn mace] [--atoms 500 2000 8000]
        [--checkpointing never] [--threads 1] [--repeats 2] [--unchecked]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

ROOT = Path(__file__).resolve().parents[1]
LATTICE = 3.61


def copper(atoms: int):
    """Cubic fcc Cu, n x n x n conventional cells with 4 n^3 closest to ``atoms``."""
    import ase.build
    import numpy as np

    n = max(1, round((atoms / 4) ** (1 / 3)))
    cell = ase.build.bulk("Cu", "fcc", a=LATTICE, cubic=True).repeat((n, n, n))
    cell.positions += np.random.default_rng(0).normal(scale=0.02, size=cell.positions.shape)
    return cell


def rss_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def child(model_name: str, atoms_count: int, repeats: int, mode: str, unchecked: bool) -> dict:
    """One (model, size, checkpointing mode) in this process: estimate, then measured
    time and peak. ``unchecked`` runs a call the estimate would refuse, to measure how
    far the estimate errs there (the kernel kills the child if it truly does not fit)."""
    import torch

    import geocompose
    import geocompose.nn.model
    from geocompose.errors import MemoryRefusal
    from geocompose.nn.memory import available_bytes, estimate_peak

    if unchecked:  # the mode alone decides; nothing is refused
        geocompose.nn.model.check_memory = lambda model, batch, name: model.checkpointing == "always"

    model = geocompose.compile(ROOT / "blueprints" / f"{model_name}.yaml", dtype=torch.float32)
    model = model.eval()
    model.checkpointing = mode
    batch = geocompose.Batch.from_ase(copper(atoms_count), dtype=torch.float32)
    estimate, edges = estimate_peak(model, batch, checkpointed=mode == "always")
    row = {"model": model_name, "mode": mode, "atoms": batch.num_atoms, "edges": edges,
           "estimate_gib": estimate / 2**30, "available_gib": available_bytes() / 2**30}  # fmt: skip
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # reset VmHWM (peak RSS) to the current RSS
        before = rss_kib("VmRSS")
        model(batch)["forces"].sum().item()
        row["peak_gib"] = (rss_kib("VmHWM") - before) / 2**20
        timing = harness.measure(lambda: model(batch)["forces"].sum().item(), repeats, warmup=0)
        row["seconds"] = timing.median_ms / 1e3
        row["cpu_seconds"] = timing.cpu_ms / 1e3  # less disturbed by other processes
    except MemoryRefusal as refusal:
        row["refused"] = str(refusal)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["schnet", "painn", "mace"])
    parser.add_argument("--atoms", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--checkpointing", nargs="+", default=["never"],
                        choices=["never", "always"])  # fmt: skip
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--unchecked", action="store_true",
                        help="run sizes the estimate refuses (measures its error there)")  # fmt: skip
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    threads = harness.set_threads(args.threads)
    if args.child:
        name, count, mode = args.child
        print(json.dumps(child(name, int(count), args.repeats, mode, args.unchecked)))
        return

    print(harness.header("Scaling: forward+forces time and peak memory, fcc Cu at 5 Å",
                         [], threads))  # fmt: skip
    print(f"float32, eval mode; time (wall, and CPU of this process) = median of "
          f"{args.repeats} calls after the first; "
          "peak = resident memory above the state before the first call")  # fmt: skip
    print("| model | checkpointed | atoms | edges | time s | ms/atom | CPU ms/atom | peak GiB "
          "| KiB/edge | estimate GiB |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for name, count, mode in ((n, c, m) for n in args.models for c in args.atoms
                              for m in args.checkpointing):  # fmt: skip
        command = [sys.executable, __file__, "--child", name, str(count), mode,
                   "--threads", str(threads), "--repeats", str(args.repeats),
                   *(["--unchecked"] if args.unchecked else [])]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        label = "yes" if mode == "always" else "no"
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["(no message)"]
            print(f"| {name} | {label} | {count:,} | - | failed: {tail[0][:150]} | | | | | |")
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        start = f"| {name} | {label} | {row['atoms']:,} | {row['edges']:,}"
        if "refused" in row:
            print(f"{start} | refused before running: {row['refused']} | | | | | "
                  f"{row['estimate_gib']:.1f} |")  # fmt: skip
            continue
        per_atom = [1e3 * row[key] / row["atoms"] for key in ("seconds", "cpu_seconds")]
        print(f"{start} | {row['seconds']:.2f} | {per_atom[0]:.2f} | {per_atom[1]:.2f} "
              f"| {row['peak_gib']:.2f} | {row['peak_gib'] * 2**20 / row['edges']:.1f} "
              f"| {row['estimate_gib']:.2f} |", flush=True)  # fmt: skip
    print(harness.footer())
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
