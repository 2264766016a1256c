"""A Lightning callback timing nequip's training steps alone, for ``nequip_train.py``.

Imported by ``nequip-train`` through the config's ``_target_`` (inside the nequip
venv, with this folder on ``PYTHONPATH``). The clock runs from ``on_train_batch_start``
to ``on_train_batch_end``: forward, loss, backward, gradient clipping, the optimiser
step and nequip's EMA update (its ``optimizer_step``); data loading, the neighbour
lists and validation are outside, as in geocompose's per-epoch ``time_s``.
"""

from __future__ import annotations

import json
import time

import lightning


class TrainStepTimer(lightning.Callback):
    """Sums the wall time and structures of the training steps; writes them as JSON
    (``time_s``, ``structures``, ``epochs``) to ``out_file`` when training ends."""

    def __init__(self, out_file: str) -> None:
        self.out_file = out_file
        self.time_s, self.structures, self.epochs = 0.0, 0, 0
        self._start = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        from nequip.data import AtomicDataDict

        self.time_s += time.perf_counter() - self._start
        self.structures += AtomicDataDict.num_frames(batch)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epochs += 1

    def on_train_end(self, trainer, pl_module) -> None:
        with open(self.out_file, "w") as handle:
            json.dump(
                {"time_s": self.time_s, "structures": self.structures, "epochs": self.epochs},
                handle,
            )
