"""What this machine can run fast, and ``precision="auto"``: the fastest path within a bound.

Inference paths ("float32" = the reference):

* ``float32``      torch, float32 — matches the official outputs (≤ 1e-4);
* ``bfloat16``     torch bf16 autocast — only where the hardware has bf16 arithmetic (AVX-512 BF16
                   or AMX on CPUs, CUDA GPUs that report bf16); elsewhere it is emulated and slower;
* ``int8``         torch dynamic int8 quantization of the Linear layers — only on CPUs with VNNI;
* ``onnxruntime``  ONNX Runtime float32 on the CPU — only when an exported file is at hand (an
                   export takes tens of seconds, too long to try at construction).

``precision="auto"`` keeps the candidates the flags allow (:func:`candidate_paths`), measures their
deviation on synthetic person crops with and without prompts (:func:`probe_samples`) and times
them on a small batch at construction (:data:`PROBE`, interleaved rounds, medians) and picks, by
:func:`choose_path`, the fastest that is at least :data:`SPEED_MARGIN` faster than float32 *and*
whose deviation from float32 on the probe is within :data:`DEVIATION_BOUND`; otherwise float32.
The flags keep known-slow paths from being tried; the timing is what guarantees the choice is not
slower than float32 on this very machine (docs/performance.md has the measured tables and costs).
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F

from kpr.cpu import CpuFeatures

if TYPE_CHECKING:
    from kpr.synthetic.generator import RenderedSample

Path_ = Literal["float32", "bfloat16", "int8", "onnxruntime"]


def candidate_paths(
    device_type: str,
    cpu: CpuFeatures,
    *,
    cuda_bf16: bool = False,
    onnx_file: bool = False,
    int8_available: bool = True,
) -> tuple[Path_, ...]:
    """The paths worth timing on this hardware, float32 first."""
    if device_type == "cuda":
        return ("float32", "bfloat16") if cuda_bf16 else ("float32",)
    if device_type != "cpu":
        return ("float32",)
    paths: list[Path_] = ["float32"]
    if cpu.bf16:
        paths.append("bfloat16")
    if cpu.vnni and int8_available:
        paths.append("int8")
    if onnx_file:
        paths.append("onnxruntime")
    return tuple(paths)


@dataclass(frozen=True)
class Deviation:
    """How far a path's outputs are from float32's on the same inputs.

    ``max_abs``: largest |Δ| of any L2-normalised embedding value; ``min_cosine``: lowest cosine
    of any embedding slot; ``visibility_agreement``: fraction of equal visibility decisions.
    """

    max_abs: float
    min_cosine: float
    visibility_agreement: float


@dataclass(frozen=True)
class DeviationBound:
    """What ``precision="auto"`` accepts of a path, on the crops a caller embeds: every embedding
    slot's cosine to float32 ≥ ``min_cosine`` (0.999 between unit vectors is a Euclidean distance
    of 0.045, ~2 % of the [0, 2] range of part distances) and ≥ ``min_visibility_agreement``
    equal visibility decisions.

    The probe sees a few crops; its worst slot understates the worst over hundreds of crops
    (measured on two trained demo models: 4.5–5.5× smaller 1 − cosine than over 600 real crops,
    docs/performance.md). So :meth:`accepts` requires the probe's 1 − cosine to be
    ``probe_tail_factor`` times inside the bound. The visibility agreement is a rate, which the
    probe estimates without that bias: it is held to the bound as it is."""

    min_cosine: float = 0.999
    min_visibility_agreement: float = 0.95
    probe_tail_factor: float = 6.0

    def accepts(self, deviation: Deviation) -> bool:
        """Whether a probe deviation is far enough inside the bound."""
        tail = (1 - deviation.min_cosine) * self.probe_tail_factor
        agreement = deviation.visibility_agreement
        return tail <= 1 - self.min_cosine and agreement >= self.min_visibility_agreement


DEVIATION_BOUND = DeviationBound()
SPEED_MARGIN = 1.10
"""A path must be this much faster than float32 on the probe: timings on a shared machine are
noisy, and a path that is only as fast is not worth its deviation."""


@dataclass(frozen=True)
class Probe:
    """The probe's size. Deviation: ``crops`` synthetic person crops (half with a second person),
    each with its keypoint prompt and with the empty prompt, run once per path (also the
    warm-up). Speed: the first ``batch`` of those, ``rounds`` interleaved timed rounds per path.
    Cost ≈ paths × (one forward of 2·crops + rounds forwards of batch): ≈ 1 s for the tiny
    models, ≈ 20 s for Swin-B at 384×128 on 2 cores (docs/performance.md)."""

    crops: int = 4
    batch: int = 2
    rounds: int = 3


PROBE = Probe()


@functools.lru_cache(maxsize=4)
def probe_samples(count: int = PROBE.crops) -> tuple[RenderedSample, ...]:
    """``count`` seeded synthetic person crops (128×64 RGB with keypoints): the first half show
    another person in front of or behind the target, the rest the target alone.

    Why not noise: bf16 and int8 deviate more on trained weights and person-like inputs than on
    noise (docs/performance.md: min cosine 0.998 on 1,200 real crops against ≥ 0.9999 on noise),
    so a noise probe would accept paths that fail the bound on the crops a caller embeds.
    """
    from kpr.synthetic.generator import SyntheticConfig, build_world, plan_images, render_sample

    world = build_world(
        SyntheticConfig(seed=0, num_images=40, num_train_ids=5, num_test_ids=5, team_size=2)
    )
    plans = plan_images(world)
    multi = [p for p in plans if p.occlusion == "multi_person"][: count // 2]
    alone = [p for p in plans if p.occlusion != "multi_person"][: count - len(multi)]
    return tuple(render_sample(world, plan) for plan in multi + alone)


def deviation(
    reference: tuple[torch.Tensor, torch.Tensor], other: tuple[torch.Tensor, torch.Tensor]
) -> Deviation:
    """(embeddings [N, S, D], visibility [N, S]) of float32 and of another path → Deviation."""
    a = F.normalize(reference[0].float(), dim=-1)
    b = F.normalize(other[0].float(), dim=-1)
    agree = (reference[1] == other[1]).float().mean()
    return Deviation(
        float((a - b).abs().max()),
        float(F.cosine_similarity(a, b, dim=-1).min()),
        float(agree),
    )


def time_paths(runs: Mapping[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds per call of each run (already warmed up by the caller), timed in
    interleaved rounds so that a transient slowdown of the shared machine hits every path alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def choose_path(
    timings: Mapping[str, float],
    deviations: Mapping[str, Deviation],
    bound: DeviationBound = DEVIATION_BOUND,
    margin: float = SPEED_MARGIN,
) -> str:
    """The fastest path that beats float32 by ``margin`` and stays within ``bound``; float32 if
    none does. ``timings`` must hold ``"float32"``; a path without a deviation is not eligible."""
    base = timings["float32"]
    eligible = [
        name
        for name, seconds in timings.items()
        if name != "float32"
        and name in deviations
        and bound.accepts(deviations[name])
        and seconds * margin <= base
    ]
    return min(eligible, key=lambda name: timings[name], default="float32")


def summary(chosen: str, timings: Mapping[str, float], deviations: Mapping[str, Deviation]) -> str:
    """One log line: the choice, then every path's probe time and deviation."""
    parts: Sequence[str] = [
        f"{name} {seconds * 1e3:.0f} ms"
        + (
            f" (cos {deviations[name].min_cosine:.5f}, "
            f"visibility {deviations[name].visibility_agreement:.0%})"
            if name in deviations
            else ""
        )
        for name, seconds in timings.items()
    ]
    return f"precision auto: {chosen} — probe: " + ", ".join(parts)
