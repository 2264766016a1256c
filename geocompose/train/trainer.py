"""The training loop: a blueprint and a data set in, checkpoints and logs out.

One epoch visits every training batch once in a seeded order (the batches themselves
are built once, so each neighbour list is built once per run), takes an AdamW step per
batch on the weighted energy/force/stress loss with gradient clipping, folds the
weights into an exponential moving average, then evaluates the averaged weights on the
validation split. The best validation loss is kept in ``best.pt``, the latest state in
``last.pt`` (what ``resume`` continues from); training stops early when the validation
loss has not improved for ``patience`` epochs.

Reproducible: the weights come from ``seed``, the batch order of epoch ``e`` from
``(seed, e)`` and the random draws of stochastic strategies (frames, rotations) in epoch
``e`` from a generator seeded from ``(seed, e, rank)`` (never torch's global stream),
so a resumed run takes exactly the steps an uninterrupted one would, whatever else ran
in the process. Each epoch writes its log row, then ``best.pt`` (when improved), then
``last.pt``; a run starts by cutting the log back to its checkpoint's epoch and deleting
temporaries a killed writer left, so a kill at any point resumes without a repeated
row. A resume refuses settings other than its checkpoint's unless told to override them
(:mod:`geocompose.train.resume`).

Under ``torchrun`` (several processes) each process takes its share of the epoch's
order and DDP averages the gradients (:mod:`geocompose.train.distributed`); only rank 0
writes checkpoints and logs and shows progress.

Example::

    from geocompose.data.dataset import Dataset
    from geocompose.train import TrainConfig, Trainer
    data = Dataset.from_file("cu.extxyz")
    result = Trainer("schnet.yaml", data, TrainConfig(epochs=50), out="runs/cu").fit()
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geocompose.compiler import compile as compile_blueprint
from geocompose.compiler import load as load_blueprint
from geocompose.data.dataset import Dataset, Splits
from geocompose.errors import StructureError
from geocompose.nn.memory import keep_freed_memory
from geocompose.nn.symmetry.draws import use_generator
from geocompose.train import distributed as dist
from geocompose.train import resume as changes
from geocompose.train.atomic import remove_temporaries
from geocompose.train.checkpoint import DTYPES, load_checkpoint, save_checkpoint
from geocompose.train.config import STRESS_WEIGHT, TrainConfig, TrainingDiverged, TrainResult
from geocompose.train.ema import EMA
from geocompose.train.finetune import freeze_blocks, load_initial_weights
from geocompose.train.learning_rate import default_lr
from geocompose.train.logs import EpochLog
from geocompose.train.loss import Objective
from geocompose.train.metrics import evaluate
from geocompose.train.potential import Potential
from geocompose.train.progress import Progress, epoch_line
from geocompose.train.reference import force_scale, resolve_reference
from geocompose.train.schedule import Schedule
from geocompose.types import fields as F

__all__ = ["CHECKPOINTS", "Trainer"]

CHECKPOINTS = ("best.pt", "last.pt")
DRAWS_STREAM = 0x6472617773  # keeps the draws' seeds apart from other uses of `seed`


class Trainer:
    """Trains one blueprint on one data set, writing into ``out``.

    Args:
        blueprint: a YAML path, a dict or a validated blueprint.
        data: the reference data.
        config: the run's settings.
        out: output directory (``best.pt``, ``last.pt``, ``metrics.csv``).
        splits: explicit train/valid/test indices (else a seeded split by fractions).
        progress: show a live progress bar (else one line per epoch).
    """

    def __init__(
        self,
        blueprint,
        data: Dataset,
        config: TrainConfig | None = None,
        out: str | Path = "run",
        splits: Splits | None = None,
        progress: bool = True,
        echo=print,
    ):
        # A copy: the learning rate resolved below belongs to this run, not the caller's config.
        self.config = replace(config) if config is not None else TrainConfig()
        self.data = data
        self.data_fingerprint = data.fingerprint()  # hashed once: every checkpoint stores it
        self.out = Path(out)
        cfg = self.config
        dist.setup(cfg.device)  # joins torchrun's process group; nothing when run alone
        self.device = dist.device(cfg.device)  # cuda:LOCAL_RANK under torchrun
        self.main = dist.is_main()
        self.echo = echo if self.main else lambda _: None  # other ranks print nothing
        self.progress = progress and self.main
        if cfg.dtype not in DTYPES:
            raise StructureError(f"dtype must be one of {', '.join(DTYPES)}; got {cfg.dtype!r}")
        if cfg.autocast not in ("off", "bf16"):
            raise StructureError(f"autocast must be 'off' or 'bf16'; got {cfg.autocast!r}")
        self.autocast = cfg.autocast == "bf16"  # float32's range, no loss scaling; opt-in
        self.blueprint = load_blueprint(blueprint).blueprint.model_dump(mode="json")
        model = compile_blueprint(self.blueprint, dtype=DTYPES[cfg.dtype], seed=cfg.seed)
        if cfg.stress_weight is None:  # on when the data can train it (issue 16)
            periodic = all(r.pbc.all() for r in data.records)
            cfg.stress_weight = STRESS_WEIGHT if periodic and data.has(F.STRESS) else 0.0
        if cfg.lr is None:
            cfg.lr = default_lr(model)
        weights = cfg.weights
        if weights.forces > 0 and F.FORCES not in model.outputs:
            raise StructureError(
                f"model '{model.name}' has no '{F.FORCES}' output; set the forces weight to 0 or add a forces readout"
            )
        data.check(model.species, require=weights.targets())
        if weights.stress > 0 and not all(r.pbc.all() for r in data.records):
            raise StructureError("a stress loss needs every structure periodic in 3D")
        self.splits = splits or data.split(cfg.valid_fraction, cfg.test_fraction, cfg.seed)
        if not self.splits.train:
            raise StructureError("the training split is empty")
        species = list(model.species)
        # Fitted E0s, or the blueprint's reference_energies term (then the shift is 0).
        reference, in_force = resolve_reference(model, data, self.splits.train)
        scale = force_scale(data, self.splits.train, in_force, species)
        self.potential = Potential(model, torch.tensor(reference), scale).to(self.device)
        if cfg.init:  # its weights, reference energies and scale replace the fitted ones
            load_initial_weights(self.potential, cfg.init)
        self.frozen = freeze_blocks(model, cfg.freeze) if cfg.freeze else []
        # The stochastic strategies' one source of randomness, reseeded every epoch.
        self.draws = torch.Generator()
        use_generator(self.potential, self.draws)
        train, valid = self.splits.train, self.splits.valid
        sizes = {
            "atoms_per_batch": cfg.atoms_per_batch,
            "dtype": DTYPES[cfg.dtype],
            "edges_per_batch": cfg.edges_per_batch or None,
            "count_edges": lambda one: int(model.graph.topology(one)[F.EDGE_INDEX].shape[1]),
        }
        batches = data.batches  # built once: each batch caches its neighbour list
        self.train_batches = [
            b.to(device=self.device) for b in batches(train, seed=cfg.seed, **sizes)
        ]
        self.valid_batches = [b.to(device=self.device) for b in batches(valid, **sizes)]
        self.optimizer = torch.optim.AdamW(
            [p for p in self.potential.parameters() if p.requires_grad],
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            # One fused kernel for every parameter instead of ~10 ops per tensor: on
            # 72-atom molecule batches the for-loop step was 5 % of a PaiNN training
            # step (docs/benchmarks.md). Same update; CPU and CUDA have the kernel.
            fused=torch.device(self.device).type in ("cpu", "cuda"),
        )
        self.schedule = Schedule(
            cfg.schedule, cfg.lr, cfg.epochs, cfg.min_lr_ratio, patience=max(cfg.patience // 4, 5)
        )
        self.ema = EMA(self.potential, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.epoch = 0  # epochs completed
        self.best_loss, self.best_epoch, self.bad_epochs = math.inf, 0, 0
        self.metrics: dict[str, float] = {}
        self.overrides: list[dict[str, Any]] = []  # what resumes changed, oldest first
        self.objective = Objective(self.potential, weights, stress=cfg.stress_weight > 0)

    # -- resume ---------------------------------------------------------------------
    @classmethod
    def resume(
        cls,
        out: str | Path,
        data: Dataset,
        epochs: int | None = None,
        progress: bool = True,
        echo=print,
        settings: dict[str, Any] | None = None,
        blueprint=None,
        override: bool = False,
    ) -> Trainer:
        """Continue the run in ``out`` from its ``last.pt`` (optionally to more epochs).

        Args:
            out: the run directory.
            data: the data set it was trained on.
            epochs: train until this many epochs (default: the checkpoint's).
            settings: TrainConfig fields asked for again (the others keep the
                checkpoint's values); each must equal the checkpoint's unless ``override``.
            blueprint: the blueprint asked for again (path, dict or validated), compared
                by content with the checkpoint's; None continues with the checkpoint's.
            override: continue with differing ``settings`` and ``blueprint``, appending
                what changed to ``<out>/overrides.jsonl`` and printing it.

        Raises:
            CheckpointError: no ``last.pt``, a data set that does not fit its splits, or
                weights that do not fit the blueprint.
            ResumeConflict: differing settings without ``override``, or differing
                split fractions (never overridable).
        """
        out = Path(out)
        state = load_checkpoint(out / "last.pt")
        given = None
        if blueprint is not None:
            given = load_blueprint(blueprint).blueprint.model_dump(mode="json")
        found = changes.compare(state, dict(settings or {}), given)
        fixed = [c for c in found if c.name in changes.FIXED]
        if fixed or (found and not override):
            raise changes.ResumeConflict(out, fixed or found, fixed=bool(fixed))
        config = TrainConfig.from_dict({**state["config"], **dict(settings or {})})
        if epochs is not None:
            config.epochs = epochs
        splits = changes.check_data(state, data, out)
        # The run's own last.pt holds the weights: the --init checkpoint is not reread.
        trainer = cls(
            given if found and given is not None else state["blueprint"],
            data,
            replace(config, init=""),
            out,
            splits=splits,
            progress=progress,
            echo=echo,
        )
        trainer.config.init = config.init
        changes.restore(trainer, state, str(out / "last.pt"))
        if found:
            trainer.overrides.append(changes.record(out, trainer.epoch, found))
            for change in found:
                trainer.echo(f"--override: {change}")
        return trainer

    # -- the loop -------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train until ``config.epochs`` or early stopping; returns the summary."""
        cfg = self.config
        # Each step frees what the next allocates again: kept, it is reused instead of
        # trimmed and faulted in anew (docs/benchmarks.md: PaiNN's ethanol training
        # in the head-to-head benchmark's process). Large batches stay checked.
        keep_freed_memory()
        self.out.mkdir(parents=True, exist_ok=True)
        log = None
        if self.main:  # the one writer: nobody else is mid-write in `out`
            log = EpochLog(self.out, after_epoch=self.epoch)  # rows past the checkpoint go
            stale = remove_temporaries(self.out, (*CHECKPOINTS, log.path.name))
            if stale:
                self.echo(f"removed {len(stale)} temporary file(s) a killed run left in {self.out}")
        history: list[dict[str, float]] = []
        stopped = False
        # Wrapped here, after a resume loaded its weights: DDP broadcasts rank 0's.
        self.step_module = dist.wrap(self.objective, self.train_batches[0])
        bar = Progress(
            enabled=self.progress,
            epochs=cfg.epochs,
            batches=len(dist.shard(range(len(self.train_batches)))),
            start=self.epoch,
        )
        try:
            with bar:
                while self.epoch < cfg.epochs:
                    if cfg.patience and self.bad_epochs >= cfg.patience:
                        stopped = True
                        break
                    row = self._epoch(bar)
                    history.append(row)
                    if log is not None:
                        log.write(row)
                    self._checkpoint(row)
                    bar.epoch_done(row)
                    if not self.progress:
                        self.echo(epoch_line(row))
                if cfg.patience and self.bad_epochs >= cfg.patience and self.epoch < cfg.epochs:
                    stopped = True
        finally:
            if log is not None:
                log.close()
        if stopped:
            self.echo(
                f"stopped early after epoch {self.epoch}: no improvement for {cfg.patience} epochs"
            )
        return TrainResult(
            self.epoch,
            self.best_epoch,
            self.best_loss,
            self.metrics,
            stopped,
            self.out / "best.pt",
            self.out / "last.pt",
            history,
        )

    def _epoch(self, bar: Progress) -> dict[str, float]:
        cfg = self.config
        lr = self.schedule.lr(self.epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        order = np.random.default_rng([cfg.seed, self.epoch]).permutation(len(self.train_batches))
        self.draws.manual_seed(_draws_seed(cfg.seed, self.epoch, dist.rank()))
        order = dist.shard(order)  # this rank's share; the whole order when alone
        self.potential.train()
        sums: dict[str, float] = {}
        seen = 0
        start = time.perf_counter()
        for step, k in enumerate(order):
            batch = self.train_batches[k]
            with torch.autocast(
                torch.device(self.device).type, torch.bfloat16, enabled=self.autocast
            ):
                total, parts = self.step_module(batch)
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()  # under DDP, the gradients are averaged over the ranks here
            # The norm of the averaged gradient is the same on every rank: if any rank's
            # loss was not finite, every rank stops here (none is left waiting).
            norm = torch.nn.utils.clip_grad_norm_(
                self.potential.parameters(), cfg.clip if cfg.clip > 0 else math.inf
            )
            if not (torch.isfinite(total) and torch.isfinite(norm)):
                raise TrainingDiverged(
                    f"the loss became {float(total.detach())} (gradient norm {float(norm)}) "
                    f"in epoch {self.epoch + 1} (learning rate {lr:g}); "
                    "lower --lr or raise --clip"
                )
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update(self.potential)
            n = batch.num_structures
            seen += n
            for key, value in {"loss": float(total.detach()), **parts}.items():
                sums[key] = sums.get(key, 0.0) + value * n
            bar.batch_done(step + 1, sums["loss"] / seen)
        elapsed = time.perf_counter() - start
        sums = dist.sum_across({**sums, "_seen": seen})  # every rank's structures
        seen = int(sums.pop("_seen"))
        self.epoch += 1
        row: dict[str, float] = {
            "epoch": self.epoch,
            "lr": lr,
            "time_s": elapsed,
            "structures_per_s": seen / elapsed if elapsed > 0 else math.nan,
        }
        row.update({f"train_{k}": v / seen for k, v in sums.items()})
        valid = self._validate()
        row.update({f"valid_{k}": v for k, v in valid.items()})
        return row

    @property
    def judged_on(self) -> str:
        """The split best.pt, the schedule and early stopping judge: "valid", or "train"
        when there is no validation split."""
        return "valid" if self.valid_batches else "train"

    def _validate(self) -> dict[str, float]:
        batches = self.valid_batches or self.train_batches  # no validation split: judge on train
        # Each rank evaluates every W-th batch; the sums are added over the ranks, so all
        # of them take the same schedule, best-checkpoint and early-stopping decisions.
        batches = batches[dist.rank() :: dist.world_size()]
        # Stress only when the loss weighs it: its extra backward pass is not free.
        stress = self.config.stress_weight > 0
        if self.ema is not None:
            with self.ema.applied(self.potential):
                metrics, value = evaluate(
                    self.potential, batches, self.config.weights, stress=stress
                )
        else:
            metrics, value = evaluate(self.potential, batches, self.config.weights, stress=stress)
        value = dist.sum_metrics(metrics, value, sum(b.num_structures for b in batches))
        self.schedule.observe(value)
        self.metrics = {"loss": value, **metrics.compute()}
        return self.metrics

    def _checkpoint(self, row: dict[str, float]) -> None:
        value = row["valid_loss"]
        improved = value < self.best_loss
        if improved:
            self.best_loss, self.best_epoch, self.bad_epochs = value, self.epoch, 0
        else:
            self.bad_epochs += 1
        if not self.main:  # one writer; the other ranks only keep the counters
            return
        state = changes.snapshot(self)
        # best before last: a kill between the two resumes from the previous last.pt,
        # redoes this epoch and rewrites best.pt (the other order would leave a stale one).
        if improved:
            save_checkpoint(state, self.out / "best.pt")
        save_checkpoint(state, self.out / "last.pt")


def _draws_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of the stochastic strategies' draws in 0-based ``epoch`` on ``rank``."""
    words = np.random.SeedSequence([seed, DRAWS_STREAM, epoch, rank]).generate_state(2)
    return int(words[0]) << 32 | int(words[1])
