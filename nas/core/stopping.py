"""When a search stops: small rules the driver asks between evaluations (pymoo's Termination).

A search stops when the strategy has told all its generations, or when a search-level
budget runs out: ``[search] max_evaluations`` (trainings recorded in the run) or
``[search] max_minutes`` (the search's own clock, which a resumed run continues from the
checkpoint, so a budget holds across kills and resumes). Whichever comes first.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "AnyOf",
    "MaxEvaluations",
    "MaxMinutes",
    "Progress",
    "SearchClock",
    "StopRule",
    "StrategyDone",
    "stop_rule",
]


@dataclass(frozen=True)
class Progress:
    """Where a search stands: what the stop rules look at."""

    evaluations: int
    """Evaluations recorded in the run, resumed ones included."""
    seconds: float
    """The search's clock: seconds spent searching, over every session of the run."""
    strategy_done: bool


class StopRule(Protocol):
    """Says whether a search must stop, and how many more evaluations it may start."""

    def reason(self, progress: Progress) -> str | None:
        """Why the search must stop now, or None to go on."""
        ...

    def evaluations_left(self, progress: Progress) -> int | None:
        """How many more evaluations may start (None: no limit from this rule)."""
        ...


@dataclass(frozen=True)
class StrategyDone:
    """Stops once the strategy has told all its generations."""

    def reason(self, progress: Progress) -> str | None:
        return "generations" if progress.strategy_done else None

    def evaluations_left(self, progress: Progress) -> int | None:
        return None


@dataclass(frozen=True)
class MaxEvaluations:
    """Stops after ``limit`` recorded evaluations; never starts more than that."""

    limit: int

    def reason(self, progress: Progress) -> str | None:
        return "max_evaluations" if progress.evaluations >= self.limit else None

    def evaluations_left(self, progress: Progress) -> int | None:
        return max(0, self.limit - progress.evaluations)


@dataclass(frozen=True)
class MaxMinutes:
    """Stops once the search's clock passes ``minutes`` (running evaluations are cancelled)."""

    minutes: float

    def reason(self, progress: Progress) -> str | None:
        return "max_minutes" if progress.seconds >= 60.0 * self.minutes else None

    def evaluations_left(self, progress: Progress) -> int | None:
        return None


@dataclass(frozen=True)
class AnyOf:
    """Stops when any of ``rules`` does; the evaluations left are the fewest any allows."""

    rules: Sequence[StopRule]

    def reason(self, progress: Progress) -> str | None:
        for rule in self.rules:
            reason = rule.reason(progress)
            if reason is not None:
                return reason
        return None

    def evaluations_left(self, progress: Progress) -> int | None:
        limits = [rule.evaluations_left(progress) for rule in self.rules]
        known = [limit for limit in limits if limit is not None]
        return min(known) if known else None


def stop_rule(*, max_evaluations: int = 0, max_minutes: float = 0.0) -> StopRule:
    """The experiment's rule: the strategy's generations, and the budgets that are set (> 0)."""
    rules: list[StopRule] = [StrategyDone()]
    if max_evaluations:
        rules.append(MaxEvaluations(max_evaluations))
    if max_minutes:
        rules.append(MaxMinutes(max_minutes))
    return AnyOf(rules)


class SearchClock:
    """Seconds spent searching: ``already`` from earlier sessions of the run, plus this one's."""

    def __init__(self, already: float = 0.0) -> None:
        self._already = already
        self._started = time.monotonic()

    def seconds(self) -> float:
        """The clock's reading now."""
        return self._already + time.monotonic() - self._started
