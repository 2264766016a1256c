"""Data-parallel training (DDP over gloo, two CPU processes) against one process.

The strong check: a DDP step on two one-structure shards is the single-process step on
the union batch (gradients and the weights after two AdamW epochs agree to 1e-10 in
float64), and a rank's own gradient alone is far from it, so the test fails if the
gradients are not averaged. The end-to-end check runs ``torchrun -m geocompose train``.
"""

import csv
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
import yaml
from train_cases import SAMPLE, tiny_painn, tiny_schnet

from geocompose.data.dataset import Dataset, Splits
from geocompose.train import TrainConfig, Trainer, distributed, evaluate, load_potential

if not (torch_dist.is_available() and torch_dist.is_gloo_available()):
    pytest.skip("torch.distributed with the gloo backend is unavailable", allow_module_level=True)

WORLD = 2
SPLITS = Splits(train=[0, 1], valid=[2, 3])
QUIET = {"progress": False, "echo": lambda _: None}


def config(atoms_per_batch: int) -> TrainConfig:
    # One structure (32 atoms) per batch on each rank, or both in one batch alone.
    return TrainConfig(epochs=2, atoms_per_batch=atoms_per_batch, lr=5e-3, dtype="float64")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out: str) -> None:
    # The environment torchrun would set; Trainer joins the group from it.
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(WORLD),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    data = Dataset.from_file(SAMPLE, index=":4")
    try:
        # Gradients of one step: this rank's own, and DDP's (on a separate model copy, so
        # the DDP that fit() builds is the only one on the trained weights).
        probe = Trainer(tiny_schnet(), data, config(32), out, splits=SPLITS, **QUIET)
        batch = probe.train_batches[rank]
        probe.objective(batch)[0].backward()
        local = {n: p.grad.clone() for n, p in probe.potential.named_parameters()}
        ddp = distributed.wrap(probe.objective, batch)
        for p in probe.potential.parameters():
            p.grad = None
        ddp(batch)[0].backward()
        averaged = {n: p.grad.clone() for n, p in probe.potential.named_parameters()}
        trainer = Trainer(tiny_schnet(), data, config(32), out, splits=SPLITS, **QUIET)
        trainer.fit()
        # A direct-forces head the loss never reaches (zero force weight): DDP must be
        # told to look for unused weights, or it refuses the second step.
        unused = TrainConfig(epochs=2, atoms_per_batch=32, forces_weight=0.0, dtype="float64")
        painn = Trainer(
            tiny_painn("direct_forces"), data, unused, f"{out}/unused", splits=SPLITS, **QUIET
        )
        painn.fit()
        torch.save(
            {
                "local": local,
                "averaged": averaged,
                "structures": batch.num_structures,
                "weights": trainer.potential.state_dict(),
                "ema": dict(trainer.ema.shadow),
                "best_epoch": trainer.best_epoch,
                "find_unused": [
                    trainer.step_module.find_unused_parameters,
                    painn.step_module.find_unused_parameters,
                ],
            },
            os.path.join(out, f"rank{rank}.pt"),
        )
    finally:
        distributed.teardown()


def test_a_ddp_step_on_two_shards_is_the_step_on_their_union(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    assert [r["structures"] for r in ranks] == [1, 1]
    assert [r["find_unused"] for r in ranks] == [[False, True]] * WORLD

    # One process, both training structures in one batch: the union.
    data = Dataset.from_file(SAMPLE, index=":4")
    alone = Trainer(tiny_schnet(), data, config(64), tmp_path / "alone", splits=SPLITS, **QUIET)
    assert len(alone.train_batches) == 1 and alone.train_batches[0].num_structures == 2
    alone.objective(alone.train_batches[0])[0].backward()
    union = {n: p.grad for n, p in alone.potential.named_parameters()}
    tight = {"rtol": 1e-10, "atol": 1e-14}
    for name, grad in union.items():
        for r in ranks:
            torch.testing.assert_close(r["averaged"][name], grad, **tight, msg=name)
    # The planted bug this must catch: one rank's gradient used alone.
    far = max(
        float((ranks[0]["local"][n] - g).norm() / g.norm()) for n, g in union.items() if g.norm()
    )
    assert far > 1e-2, far

    alone.potential.zero_grad(set_to_none=True)
    alone.fit()
    for name, value in alone.potential.state_dict().items():
        for r in ranks:
            torch.testing.assert_close(r["weights"][name], value, **tight, msg=name)
    for name, value in alone.ema.shadow.items():
        torch.testing.assert_close(ranks[0]["ema"][name], value, **tight, msg=name)
    # Every rank holds the same weights and average, and took the same decisions.
    for key in ("weights", "ema"):
        for name, value in ranks[0][key].items():
            assert torch.equal(ranks[1][key][name], value), (key, name)
    assert ranks[0]["best_epoch"] == ranks[1]["best_epoch"] == alone.best_epoch
    # Only rank 0 wrote: one log row per epoch; the checkpoint has no DDP "module." prefix.
    with (tmp_path / "metrics.csv").open() as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == [1, 2]
    potential = load_potential(tmp_path / "last.pt", averaged=False)
    for name, value in potential.state_dict().items():
        torch.testing.assert_close(value, ranks[0]["weights"][name], rtol=0, atol=0)


def test_shard_gives_every_rank_the_same_number_of_batches(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    shares = []
    for r in range(3):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        shares.append(distributed.shard(list(range(10))))
    assert shares == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]  # the remainder (9) is dropped
    with pytest.raises(Exception, match="cannot be shared by 3 processes"):
        distributed.shard([0, 1])


def _torchrun(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", str(WORLD), "-m", "geocompose", "train", *args]
    return subprocess.run(
        command, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_torchrun_trains_and_resumes_with_one_writer(tmp_path):
    import ase.io

    data = Dataset.from_file(SAMPLE, index=":16")
    ase.io.write(tmp_path / "cu16.extxyz", [data.to_atoms(i) for i in range(len(data))])
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_schnet()))
    common = ["tiny.yaml", "cu16.extxyz", "--out", "run", "--batch-atoms", "64", "--no-progress"]
    first = _torchrun(*common, "--epochs", "2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("best epoch") == 1, first.stdout  # rank 1 printed nothing
    resumed = _torchrun(*common, "--epochs", "3", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("resuming run after epoch 2 of 3") == 1, resumed.stdout
    with (tmp_path / "run" / "metrics.csv").open() as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == [1, 2, 3]
    # The checkpoint loads and evaluates in a single process.
    potential = load_potential(tmp_path / "run" / "best.pt")
    metrics, _ = evaluate(potential, data.batches(atoms_per_batch=64))
    assert 0 < metrics.compute()["forces_mae"] < 1.0
