import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kpr.errors import ConfigError
from kpr.tracking.config import TrackerConfig
from kpr.tracking.memory import Appearance, start_appearance, update_appearance, visible_slots

E = torch.eye(3)


def test_start_keeps_only_visible_slots():
    a = start_appearance(E, torch.tensor([True, False, True]))
    assert a.seen.tolist() == [True, False, True]
    assert torch.equal(a.embeddings, torch.tensor([[1.0, 0, 0], [0, 0, 0], [0, 0, 1]]))


def test_update_blends_visible_seen_slots_and_keeps_the_rest():
    memory = Appearance(
        torch.stack([E[0], torch.zeros(3), E[2]]), torch.tensor([True, False, True])
    )
    new = torch.stack([E[1], E[1], E[0]])
    out = update_appearance(memory, new, torch.tensor([True, True, False]), momentum=0.5)
    r = 1 / math.sqrt(2)
    torch.testing.assert_close(out.embeddings[0], torch.tensor([r, r, 0.0]))  # EMA, renormalised
    torch.testing.assert_close(out.embeddings[1], E[1])  # first sighting of that part
    torch.testing.assert_close(out.embeddings[2], E[2])  # not visible now: unchanged
    assert out.seen.tolist() == [True, True, True]


def test_momentum_zero_keeps_the_last_sighting():
    memory = start_appearance(E, torch.ones(3, dtype=torch.bool))
    out = update_appearance(memory, E.flip(0), torch.ones(3, dtype=torch.bool), momentum=0.0)
    torch.testing.assert_close(out.embeddings, E.flip(0))


def test_continuous_visibility_is_thresholded_at_half():
    assert visible_slots(torch.tensor([0.49, 0.5, 0.9])).tolist() == [False, True, True]


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, 0.99), st.integers(0, 2**31 - 1))
def test_seen_slots_stay_unit_vectors(momentum, seed):
    g = torch.Generator().manual_seed(seed)
    old = torch.nn.functional.normalize(torch.randn(4, 8, generator=g), dim=-1)
    new = torch.nn.functional.normalize(torch.randn(4, 8, generator=g), dim=-1)
    vis = torch.rand(4, generator=g) > 0.5
    out = update_appearance(
        start_appearance(old, torch.ones(4, dtype=torch.bool)), new, vis, momentum
    )
    norms = out.embeddings.norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.embeddings[~vis], old[~vis])


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("gate", 0.0, "gate"),
        ("gate", 1.5, "gate"),
        ("memory", 1.0, "memory"),
        ("max_age", -1, "max_age"),
        ("iou_gate", 2.0, "iou_gate"),
        ("min_confidence", float("nan"), "min_confidence"),
    ],
)
def test_config_rejects_bad_values(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrackerConfig(**{field: value})


def test_config_defaults_are_the_papers():
    c = TrackerConfig()
    assert (c.gate, c.iou_gate, c.prompts) == (0.2, None, True)
