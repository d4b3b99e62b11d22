"""The inference cache of SDPA's attention mask: reused only while its sources are unchanged."""

from __future__ import annotations

import functools

import torch
from test_solider_swin import tiny as tiny_solider
from test_timm_swin import _tiny_swinv2 as tiny_swinv2

from kpr.compat.model import official_window_blocks
from kpr.modeling.backbones.timm_swin import TimmSwin
from kpr.modeling.backbones.window_sdpa import InferenceMaskCache


class CountingBuild:
    def __init__(self, value: torch.Tensor):
        self.value, self.calls = value, 0

    def __call__(self) -> torch.Tensor:
        self.calls += 1
        return self.value.clone()


def test_cache_rebuilds_when_a_source_key_or_grad_mode_changes() -> None:
    cache, source = InferenceMaskCache(), torch.zeros(3)
    build = CountingBuild(torch.ones(2))
    with torch.no_grad():
        first = cache.get(("a",), [source], build)
        assert cache.get(("a",), [source], build) is first and build.calls == 1
        source.add_(1)  # changed in place: rebuilt
        cache.get(("a",), [source], build)
        assert build.calls == 2
        cache.get(("b",), [source], build)  # another shape / dtype key: rebuilt
        assert build.calls == 3
        cache.get(("b",), [source.double()], build)  # same values, another dtype: rebuilt
        assert build.calls == 4
        cache.get(("b",), [source.double(), source], build)  # one more source: rebuilt
        assert build.calls == 5
    with torch.inference_mode():
        kept = cache.get(("b",), [source.double(), source], build)
        assert build.calls == 5
    cache.get(("b",), [source.double(), source], build)  # autograd on: always built, not kept
    assert build.calls == 6
    with torch.no_grad():
        assert cache.get(("b",), [source.double(), source], build) is kept


def test_cache_keeps_a_few_keys_at_once() -> None:
    # Alternating between two keys (float32 and bf16 autocast calls) builds each mask once.
    cache, source = InferenceMaskCache(), torch.zeros(3)
    build = CountingBuild(torch.ones(2))
    with torch.no_grad():
        for _ in range(3):
            for key in ("float32", "bfloat16"):
                cache.get((key,), [source], build)
        assert build.calls == 2
        keys = [(str(i),) for i in range(InferenceMaskCache.MAX_ENTRIES)]
        for key in keys:  # four new keys push the two first ones out, oldest first
            cache.get(key, [source], build)
        assert build.calls == 2 + len(keys)
        for key in keys:
            cache.get(key, [source], build)
        assert build.calls == 2 + len(keys)
        cache.get(("float32",), [source], build)
        assert build.calls == 3 + len(keys)
        cache.get(keys[0], [source], build)  # the oldest kept key went to make room
        assert build.calls == 4 + len(keys)
        cache.get(keys[-1], [source], build)
        assert build.calls == 4 + len(keys)


def test_float32_and_bf16_calls_build_each_mask_once() -> None:
    backbone, images = tiny_solider(), torch.randn(1, 3, 384, 128)
    caches = [c for m in backbone.modules() for c in _caches(m)]
    with torch.inference_mode():
        builds = []
        for _ in range(2):
            _run(backbone, images)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                _run(backbone, images)
            builds.append([c.builds for c in caches])
    # One mask per dtype and per group of windows attended together.
    assert builds[0] == [2 * groups for groups in _mask_groups(backbone)]
    assert builds[1] == builds[0]


def _mask_groups(backbone: torch.nn.Module) -> list[int]:
    """Masks per dtype of each attention module, in module order: the SOLIDER block's compact
    window groups (1 for padded windows), 1 for a timm SwinV2 attention."""
    if isinstance(backbone, TimmSwin):
        return [1 for m in backbone.modules() if _caches(m)]
    counts = []
    for stage in backbone.stages:
        (layout,) = stage._layouts.values()
        for block in stage.blocks:
            compact = layout.compact_shifted if block.shift else layout.compact_plain
            counts.append(1 if compact is None else len(compact.groups))
    return counts


def _run(backbone: torch.nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    if isinstance(backbone, TimmSwin):
        return backbone.forward_stages(backbone.embed(images))
    return list(backbone(images))


def _assert_matches_reference(backbone: torch.nn.Module, images: torch.Tensor) -> None:
    """Cached inference equals the uncached official attention on the current weights."""
    with torch.inference_mode():
        ours = _run(backbone, images)
        with official_window_blocks(backbone):
            reference = _run(backbone, images)
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_cached_masks_follow_every_change_of_the_weights() -> None:
    for backbone, size in ((tiny_solider(), (384, 128)), (tiny_swinv2().eval(), (128, 64))):
        images = torch.randn(2, 3, *size)
        bias_params = [
            p
            for name, p in backbone.named_parameters()
            if "relative_position" in name or "cpb" in name
        ]
        assert bias_params
        caches = [c for m in backbone.modules() for c in _caches(m)]
        assert len(caches) == 8
        _assert_matches_reference(backbone, images)  # fills the caches
        _assert_matches_reference(backbone, images)  # reuses them
        groups = _mask_groups(backbone)
        assert [c.builds for c in caches] == groups
        with torch.no_grad():  # in place, as an optimiser step does
            for p in bias_params:
                p.add_(torch.randn_like(p))
        _assert_matches_reference(backbone, images)
        assert [c.builds for c in caches] == [2 * g for g in groups]
        # Other weights loaded (same tensors, new values), then a float16 round trip.
        torch.manual_seed(1)
        other = {
            k: v + 0.1 * torch.randn_like(v) if v.is_floating_point() else v
            for k, v in backbone.state_dict().items()
        }
        backbone.load_state_dict(other)
        _assert_matches_reference(backbone, images)
        backbone.half().float()
        _assert_matches_reference(backbone, images)
        # A batch of another size reuses the masks (they do not depend on the batch).
        _assert_matches_reference(backbone, images[:1])
        assert [c.builds for c in caches] == [4 * g for g in groups]


def _caches(module: torch.nn.Module) -> list[InferenceMaskCache]:
    """The cache of a SOLIDER attention module or of a patched timm SwinV2 one."""
    if isinstance(getattr(module, "mask_cache", None), InferenceMaskCache):
        return [module.mask_cache]
    forward = vars(module).get("forward")
    return [forward.keywords["cache"]] if isinstance(forward, functools.partial) else []
