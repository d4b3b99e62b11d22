import math
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kpr.engine.schedule import warmup_cosine_lr
from kpr.engine.training_state import (
    read_training_state,
    rng_state,
    set_rng_state,
    write_training_state,
)


def test_official_schedule_values():
    def lr(e):
        return warmup_cosine_lr(e, max_lr=0.008, min_lr=1.6e-5, warmup_epochs=5, total_epochs=120)

    assert lr(0) == pytest.approx(1.6e-5)  # epoch 0 runs at min_lr
    assert lr(1) == pytest.approx(1.6e-5 + (0.008 - 1.6e-5) / 5)
    assert lr(5) == pytest.approx(0.008)
    assert lr(5 + 115 / 2) == pytest.approx(1.6e-5 + (0.008 - 1.6e-5) / 2)
    assert lr(120) == pytest.approx(1.6e-5)
    assert lr(119) == pytest.approx(
        1.6e-5 + (0.008 - 1.6e-5) * (1 + math.cos(math.pi * 114 / 115)) / 2
    )


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0.0, 12.0),
    st.floats(0.0, 12.0),
    st.integers(1, 4),
    st.floats(1e-5, 1e-3),
    st.floats(2e-3, 0.1),
)
def test_schedule_at_fractional_epochs_rises_then_falls(a, b, warmup, min_lr, max_lr):
    lo, hi = sorted((a, b))
    lr_lo, lr_hi = (warmup_cosine_lr(e, max_lr, min_lr, warmup, 10) for e in (lo, hi))
    assert min_lr - 1e-12 <= lr_lo <= max_lr + 1e-12
    if hi <= warmup:
        assert lr_lo <= lr_hi + 1e-12
    elif lo >= warmup:
        assert lr_lo >= lr_hi - 1e-12


def test_training_state_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    state = {
        "optimizer": optimizer.state_dict(),
        "epoch": 3,
        "sampler": {"epoch": 3, "seed": 7},
        "rng": rng_state(),
    }
    draws = (random.random(), np.random.rand(), torch.rand(1).item())
    write_training_state(tmp_path, state)
    loaded = read_training_state(tmp_path)
    other = torch.optim.SGD(torch.nn.Linear(3, 2).parameters(), lr=0.5, momentum=0.9)
    other.load_state_dict(loaded["optimizer"])
    buffer = optimizer.state_dict()["state"][0]["momentum_buffer"]
    assert torch.equal(other.state_dict()["state"][0]["momentum_buffer"], buffer)
    assert other.param_groups[0]["lr"] == 0.1
    assert loaded["epoch"] == 3 and loaded["sampler"] == {"epoch": 3, "seed": 7}
    # Restoring the RNG state reproduces the same draws from every generator.
    set_rng_state(loaded["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == draws
