"""A track's appearance: one embedding per part, updated only from the parts a detection shows."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F


@dataclasses.dataclass(frozen=True, eq=False)
class Appearance:
    """Per-part appearance memory of one track.

    Attributes
    ----------
    embeddings : tensor [S, D]
        Unit vectors, slot 0 = foreground, slots 1..K = parts (S = 1 + K).
    seen : bool tensor [S]
        Whether the track has ever shown each slot; unseen slots hold zeros and take no part in
        distances.
    """

    embeddings: torch.Tensor
    seen: torch.Tensor


def visible_slots(visibility: torch.Tensor) -> torch.Tensor:
    """Binary visibility [..., S]: bool as is, continuous scores as ``score >= 0.5``."""
    return visibility if visibility.dtype == torch.bool else visibility >= 0.5


def start_appearance(embeddings: torch.Tensor, visibility: torch.Tensor) -> Appearance:
    """A new track's memory from its first detection: ``embeddings`` [S, D], ``visibility`` [S]."""
    seen = visible_slots(visibility)
    return Appearance(torch.where(seen[:, None], embeddings, 0.0), seen.clone())


def update_appearance(
    memory: Appearance, embeddings: torch.Tensor, visibility: torch.Tensor, momentum: float
) -> Appearance:
    """Fold a matched detection into a track's memory.

    Visible slots already seen: ``normalise(momentum * old + (1 - momentum) * new)``; visible
    slots never seen: ``new``; invisible slots: unchanged.

    Parameters
    ----------
    memory : Appearance
    embeddings : tensor [S, D]
        The detection's unit embeddings.
    visibility : tensor [S]
        The detection's visibility (bool or scores).
    momentum : float
        In [0, 1): the weight of the old appearance.
    """
    shown = visible_slots(visibility)
    blended = F.normalize(momentum * memory.embeddings + (1.0 - momentum) * embeddings, dim=-1)
    new = torch.where(memory.seen[:, None], blended, embeddings)
    return Appearance(torch.where(shown[:, None], new, memory.embeddings), memory.seen | shown)
