"""Training recipes: which optimizer, batch and learning-rate schedule a training uses.

Two trainings use a recipe: a candidate's brief training during the search
(``[budget] recipe``) and the final training of the winner (``[final] recipe``).

``"genome"`` takes the recipe the genome carries (its co-evolved training genes: optimizer,
learning rate, batch size, weight decay), as facenas always did. Measured on FER2013
(issue 20), that lets the budget select the recipe rather than the architecture: with
6,000 images, a genome with batch 128 takes 47 steps (median 0.386, 28% at chance) while
one with batch 16 takes 375 (median 0.534). ``"standard"`` is one recipe for every
architecture: AdamW with a linear warm-up and a cosine decay that ends with the budget,
label smoothing, a fixed batch; the genome's training genes are then ignored, so the
search ranks architectures, not recipes, and the final training picks its own batch
for throughput instead of inheriting the search's.

This module is TensorFlow-free: :class:`Recipe` is plain data, and
:meth:`Recipe.rate_at` the schedule the training loops apply before every step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from nas.core.space import TrainingRecipe

__all__ = [
    "BRIEF_RECIPES",
    "FINAL_RECIPES",
    "Recipe",
    "brief_recipe",
    "final_recipe",
]

BRIEF_RECIPES: tuple[str, ...] = ("genome", "standard")
"""The values of ``[budget] recipe``."""
FINAL_RECIPES: tuple[str, ...] = ("genome", "standard")
"""The values of ``[final] recipe``."""


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """An optimizer, a batch size and a schedule: everything a training loop needs.

    The learning rate rises linearly from 0 over the first ``warmup_fraction`` of the
    steps, then follows a cosine from ``learning_rate`` down to ``end_fraction`` of it at
    the last step. ``label_smoothing`` mixes that share of a uniform target into the
    one-hot class target (classification only).
    """

    optimizer: str
    learning_rate: float
    batch_size: int
    weight_decay: float
    warmup_fraction: float = 0.0
    end_fraction: float = 0.01
    label_smoothing: float = 0.0
    scheduled: bool = True
    """False: a constant rate (the search's ``"genome"`` recipe)."""

    @property
    def training(self) -> TrainingRecipe:
        """The optimizer part, as :func:`nas.training.core.make_optimizer` takes it."""
        return TrainingRecipe(
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            optimizer=self.optimizer,  # type: ignore[arg-type]
            weight_decay=self.weight_decay,
        )

    def rate_at(self, step: int, total_steps: int) -> float:
        """The learning rate before optimizer step ``step`` (0-based) of ``total_steps``."""
        if not self.scheduled or total_steps <= 0:
            return self.learning_rate
        warmup = int(self.warmup_fraction * total_steps)
        if step < warmup:
            return self.learning_rate * (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.learning_rate * (self.end_fraction + (1 - self.end_fraction) * cosine)


STANDARD_BRIEF = Recipe(
    optimizer="adamw",
    learning_rate=2e-3,
    batch_size=32,
    weight_decay=0.05,
    warmup_fraction=0.1,
    end_fraction=0.0,
    label_smoothing=0.1,
)
"""The search's one recipe for every architecture: 188 steps for 6,000 images."""

STANDARD_FINAL = Recipe(
    optimizer="adamw",
    learning_rate=2e-3,
    batch_size=64,
    weight_decay=0.05,
    warmup_fraction=0.05,
    end_fraction=0.0,
    label_smoothing=0.1,
)
"""The final training's recipe (and the fidelity benchmark's truth): batch 64, the
fastest per image on 2 cores among 32-128 for the nets measured, with the rate of 2e-3
AdamW trains BatchNorm nets with."""


def brief_recipe(name: str, genome: TrainingRecipe) -> Recipe:
    """The recipe of a candidate's brief training: the genome's own, at a constant rate
    (``"genome"``), or :data:`STANDARD_BRIEF`."""
    if name == "standard":
        return STANDARD_BRIEF
    return Recipe(
        optimizer=genome.optimizer,
        learning_rate=genome.learning_rate,
        batch_size=genome.batch_size,
        weight_decay=genome.weight_decay,
        scheduled=False,
    )


def final_recipe(name: str, genome: TrainingRecipe) -> Recipe:
    """The recipe of a final training: the genome's optimizer, rate and batch with a cosine
    decay to 1% (``"genome"``, facenas' recipe before issue 20), or :data:`STANDARD_FINAL`."""
    if name == "standard":
        return STANDARD_FINAL
    return replace(
        brief_recipe("genome", genome), scheduled=True, warmup_fraction=0.0, end_fraction=0.01
    )
