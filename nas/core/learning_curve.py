"""Learning-curve extrapolation: where a brief training's score is heading.

A brief training scored at three points of geometric spacing (n/4, n/2, n images, say)
is fitted with the saturating power law ``y = a - b * n**-c`` (Domhan et al. 2015 and
Klein et al. 2017 use such curves for early stopping in architecture search), and the
curve is read at the images of a full training. Three points determine the law
exactly; a curve that does not rise, or rises faster at its end than at its start, has
no such fit, and its last score is its prediction. Pure Python, no TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["extrapolate"]


def extrapolate(points: Sequence[tuple[float, float]], target: float) -> float:
    """The score at ``target`` images predicted from three ``(images, score)`` points
    whose image counts grow by one ratio; clamped between the last score and 1.

    >>> round(extrapolate([(1, 0.5), (2, 0.6), (4, 0.65)], 1e9), 4)
    0.7
    """
    if len(points) != 3:
        raise ValueError(f"need three (images, score) points, got {len(points)}")
    (n1, y1), (n2, y2), (n3, y3) = sorted(points)
    ratio = n2 / n1
    if n1 <= 0 or not math.isclose(n3 / n2, ratio, rel_tol=0.05) or ratio <= 1:
        raise ValueError(f"the image counts must grow by one ratio, got {n1}, {n2}, {n3}")
    first, second = y2 - y1, y3 - y2
    if first <= 0 or second <= 0 or second >= first:
        return float(y3)
    c = math.log(first / second) / math.log(ratio)
    b = first / (n1**-c - n2**-c)
    a = y3 + b * n3**-c
    predicted = a - b * target**-c
    return float(min(1.0, max(y3, predicted)))
