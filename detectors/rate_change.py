"""Where a 0/1 error stream changed rate, and how many errors confirm it: the statistics of
:class:`~detectors.error_rate.ErrorRateDriftDetector`, as pure functions.

Examples
--------
>>> best_split(bytearray([0] * 200 + [1, 0] * 20))  # the last 40 outcomes err half the time
40
>>> f"{scan_alpha(1e-4, n=50, span=5000):.0e}"  # a 50-outcome segment of a 5,000 history
'1e-06'
"""

from __future__ import annotations

import math

import numpy as np

from detectors.binomial import binomial_tail

__all__ = [
    "MIN_SEGMENT",
    "MIN_SEGMENT_ERRORS",
    "best_split",
    "confirming_errors",
    "scan_alpha",
    "spread",
]


# Fewest outcomes, and errors, a rise is confirmed on: a near-perfect model's three errors in a
# row are significant, and not a drift.
MIN_SEGMENT = 30
MIN_SEGMENT_ERRORS = 10


def scan_alpha(alpha: float, n: int, span: int) -> float:
    """Significance for a segment of ``n`` outcomes picked as the most extreme of a history of
    ``span``: about ``span / n`` segments that long were candidates (a scan statistic), so a
    short cluster must be that much less likely. Long segments keep ``alpha``; a jump to a high
    error rate is still confirmed in a few dozen outcomes, while a cluster of rare errors is not
    (at a 0.75 % error rate, 10 errors in 250 outcomes happen about once per 300k outcomes)."""
    return alpha * min(1.0, n / span) if span else alpha


def best_split(errors: bytearray, least: int = 5) -> int:
    """How many of the last errors form the segment whose rate differs most convincingly from
    the rate before it (the best two-rate split, by likelihood); 0 if none.

    >>> best_split(bytearray([0] * 50 + [1, 0] * 10)), best_split(bytearray([1, 0] * 30))
    (20, 0)
    """
    total_n = len(errors)
    total_k = errors.count(1)
    if total_n < 2 * least or total_k in (0, total_n):
        return 0
    # Every split at once (a history holds thousands of outcomes, split at every proposal).
    n = np.arange(least, total_n - least + 1, dtype=np.float64)
    k = np.cumsum(np.frombuffer(bytes(errors), dtype=np.uint8), dtype=np.float64)[
        least - 1 : total_n - least
    ]
    rest_k, rest_n = total_k - k, total_n - n
    rise = rest_k * n > k * rest_n
    if not rise.any():
        return 0
    ll = _loglik(k, n) + _loglik(rest_k, rest_n)
    ll[~rise] = -np.inf
    return total_n - int(n[int(np.argmax(ll))])


def _loglik(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Bernoulli log-likelihood of ``k`` successes in ``n`` at their own rate (0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        out = k * np.log(p) + (n - k) * np.log1p(-p)
    out[(k == 0) | (k == n)] = 0.0
    return out


def spread(rate: float) -> float:
    """Standard deviation of a 0/1 error at ``rate`` (kept away from 0 for rare errors)."""
    clamped = min(max(rate, 0.005), 0.995)
    return math.sqrt(clamped * (1 - clamped))


def confirming_errors(
    n: int, base_errors: int, base_n: int, base_rate: float, min_effect: float, alpha: float
) -> int:
    """The fewest errors in ``n`` outcomes that confirm a rise over a baseline of
    ``base_errors`` in ``base_n`` (rate ``base_rate``): at least ``min_effect`` above its rate,
    and significant at ``alpha`` by the conditional binomial test; ``n + 1`` if none can.

    >>> confirming_errors(1000, 50, 5000, 0.01, 0.1, 1e-4)  # 1 % before: 27 in 1,000 confirm
    27
    """
    low = max(MIN_SEGMENT_ERRORS, math.ceil(base_rate * n * (1 + min_effect) + 1e-9))
    share = n / (n + base_n)
    if binomial_tail(low + base_errors, share, low) < alpha:
        return low
    high = n
    if binomial_tail(high + base_errors, share, high) >= alpha:
        return n + 1  # this many outcomes can never confirm
    while high - low > 1:  # the tail falls as errors rise: bisect
        middle = (low + high) // 2
        if binomial_tail(middle + base_errors, share, middle) < alpha:
            high = middle
        else:
            low = middle
    return high
