"""Random draws of the stochastic strategies, from an explicit generator.

Stochastic frame averaging picks a frame, and augmentation a group element, per
structure per training call. Drawing those from torch's global stream made a run depend
on whatever else used that stream (and made ``--resume`` inexact), so every draw goes
through :class:`RandomDraws` instead: a strategy owns a CPU ``torch.Generator``, which
a training loop replaces with its own (:func:`use_generator`) and reseeds from its run
seed. The numbers are drawn on the CPU and then moved, so one seed gives the same draws
on every device.

Without a generator handed in, a strategy creates one seeded with
:data:`DEFAULT_SEED` on its first draw: a model trained by hand is still reproducible,
never tied to the global stream.

Example::

    generator = torch.Generator().manual_seed(7)
    use_generator(model, generator)   # every stochastic strategy in the model draws from it
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DEFAULT_SEED", "RandomDraws", "use_generator"]

DEFAULT_SEED = 0
"""Seed of the generator a strategy makes for itself when none was handed in."""


class RandomDraws:
    """Mixin of strategies whose training forward draws random numbers."""

    generator: torch.Generator | None = None

    def draws(self) -> torch.Generator:
        """The CPU generator every draw of this strategy comes from."""
        if self.generator is None:
            self.generator = torch.Generator().manual_seed(DEFAULT_SEED)
        return self.generator


def use_generator(module: nn.Module, generator: torch.Generator) -> int:
    """Make every stochastic strategy inside ``module`` draw from ``generator``.

    Args:
        module: a compiled model (or anything holding one, e.g. a Potential).
        generator: a CPU generator; its owner seeds it and keeps its state.

    Returns:
        How many strategies now draw from it (0: the model draws nothing at random).
    """
    count = 0
    for part in module.modules():
        if isinstance(part, RandomDraws):
            part.generator = generator
            count += 1
    return count
