"""The default learning rate follows how a model parameterises its weights.

Adam moves every weight by about ``lr`` per step whatever its gradient's size, so what
a step changes is ``lr`` *relative to the weight's own scale*. The two conventions in
the code differ by an order of magnitude there:

* ``torch.nn.Linear`` keeps the fan-in inside the weight: entries of
  RMS ``1 / sqrt(3 fan_in)`` (0.05 to 0.3 for 4 to 128 inputs).
* e3nn's ``o3.Linear`` and ``o3.TensorProduct`` store unit-variance weights and apply
  ``1 / sqrt(fan_in)`` in the forward pass (so that the output's variance is the
  input's whatever the irreps).

At lr 1e-3 an e3nn weight therefore changes ~0.1 % of its size per step where a torch
one changes ~1 %. Measured on the shipped ethanol sample (12 epochs, 60 steps): the
unit-scale weights of MACE moved 2 % in total against 15 % for PaiNN's, and MACE,
NequIP and TFN ended at 668, 647 and 634 meV/Å force MAE, no better than predicting
zero forces (626); at lr 1e-2 the same runs reach 190, 210 and 219 meV/Å
(docs/training.md, "Learning rate"). mace-torch's own default is ``--lr 0.01``.

So the default is 1e-2 for a model that holds e3nn weights and 1e-3 otherwise; an
explicit learning rate is always used as given.
"""

from __future__ import annotations

from e3nn import o3
from torch import nn

__all__ = ["E3NN_LR", "TORCH_LR", "default_lr", "e3nn_weights"]

E3NN_LR = 1e-2  # unit-variance weights, normalised in the forward pass (mace-torch's default)
TORCH_LR = 1e-3  # fan-in-scaled weights (torch.nn.Linear's initialisation)


def e3nn_weights(model: nn.Module) -> int:
    """Number of weights held directly by e3nn ``o3.Linear`` / ``o3.TensorProduct``
    modules (unit-variance parameterisation) inside ``model``."""
    return sum(
        p.numel()
        for m in model.modules()
        if isinstance(m, (o3.Linear, o3.TensorProduct))
        for p in m.parameters(recurse=False)
        if p.requires_grad
    )


def default_lr(model: nn.Module) -> float:
    """The learning rate to use when none is given (see the module docstring)."""
    return E3NN_LR if e3nn_weights(model) else TORCH_LR
