"""An always-valid test of "the challenger and the champion are equally accurate",
for a gate that looks every minute.

Only the images where exactly one of the two is right carry evidence. Under equal
accuracy each such disagreement is a fair coin: the challenger wins it with
probability 1/2. With a wins for the challenger and b for the champion over
n = a + b disagreements, the likelihood ratio of "a uniform prior on the
challenger's chance p" to "p = 1/2" is

    E = 2**n * B(a + 1, b + 1)

a nonnegative martingale under the null that starts at 1 (a mixture e-process).
By Ville's inequality it ever reaches 1/alpha with probability at most alpha,
however often it is looked at and whenever the looking stops. The mixture is
two-sided: it grows when either model wins most disagreements, and the sign of
a - b says which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaln


def log_e_value(wins: int | NDArray[Any], losses: int | NDArray[Any]) -> float | NDArray[Any]:
    """log E for `wins` disagreements won by the challenger and `losses` by the champion."""
    n = np.asarray(wins) + np.asarray(losses)
    value = n * math.log(2) + betaln(np.asarray(wins) + 1, np.asarray(losses) + 1)
    return float(value) if np.ndim(value) == 0 else value


def e_value(wins: int, losses: int) -> float:
    return math.exp(min(log_e_value(wins, losses), 700.0))  # past e**700 it is "certain" anyway


@dataclass(frozen=True)
class Evidence:
    wins: int  # disagreements the challenger got right
    losses: int  # disagreements the champion got right
    e: float
    threshold: float  # 1 / alpha

    @property
    def disagreements(self) -> int:
        return self.wins + self.losses

    @property
    def significant(self) -> bool:
        return self.e >= self.threshold and self.wins != self.losses

    @property
    def verdict(self) -> str | None:
        """ "better" or "worse" (the challenger) once significant, else None."""
        if not self.significant:
            return None
        return "better" if self.wins > self.losses else "worse"


def evidence(wins: int, losses: int, alpha: float) -> Evidence:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if wins < 0 or losses < 0:
        raise ValueError("wins and losses are counts")
    return Evidence(wins, losses, e_value(wins, losses), 1 / alpha)


def evidence_path(
    challenger_right: ArrayLike, champion_right: ArrayLike
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """E after each labelled image (in the order given), and the disagreements won
    so far by the challenger and by the champion: what the Models page draws as the
    evidence climbs, and the counts its last point stands for."""
    challenger = np.asarray(challenger_right, dtype=bool)
    champion = np.asarray(champion_right, dtype=bool)
    wins = np.cumsum(challenger & ~champion)
    losses = np.cumsum(champion & ~challenger)
    return np.exp(np.minimum(log_e_value(wins, losses), 700.0)), wins, losses
