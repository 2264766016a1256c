"""EMA of weights: the update rule, temporary application, state round trip."""

import torch

from geocompose.train.ema import EMA


def test_update_rule_with_warmup():
    module = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        module.weight.fill_(0.0)
    ema = EMA(module, decay=0.9)
    with torch.no_grad():
        module.weight.fill_(1.0)
    ema.update(module)  # step 1: d = min(0.9, 2/11)
    d = 2 / 11
    assert torch.allclose(ema.shadow["weight"], torch.tensor([[1 - d]]))
    for _ in range(100):
        ema.update(module)
    assert torch.allclose(ema.shadow["weight"], torch.tensor([[1.0]]), atol=1e-4)


def test_applied_swaps_and_restores():
    module = torch.nn.Linear(2, 2)
    ema = EMA(module, decay=0.5)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    trained = {k: v.clone() for k, v in module.state_dict().items()}
    with ema.applied(module):
        for k, v in module.state_dict().items():
            assert torch.equal(v, before[k])
    for k, v in module.state_dict().items():
        assert torch.equal(v, trained[k])
    other = EMA(module, decay=0.1)
    other.load_state_dict(ema.state_dict())
    assert other.decay == 0.5 and torch.equal(other.shadow["weight"], ema.shadow["weight"])
