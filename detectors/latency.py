"""Inference latency of one model version: p50 / p95 / p99 over a rolling window, and whether
its p99 rose.

The quantiles come from t-digests (``fastdigest``, a Rust t-digest: a batch of latencies is one
call, digests merge, and the state is plain numbers). The window is ``buckets`` digests of
``window / buckets`` latencies each; its quantiles merge the full buckets and the one filling,
so the window slides a bucket at a time. It fills from the version's first latency; the
reference (the first ``reference_size``) is a digest of its own.

**Rise against a threshold.** Whether a window's p99 is significantly above a threshold ``q``
(the version's own reference p99, or the last good version's p99) is a count: by definition
about 1 % of the baseline's latencies exceed ``q``; under no change the same share of the
window's does. Given both counts (``k`` of ``n`` in the window, ``k0`` of ``n0`` in the
baseline), the window's share of the ``k + k0`` exceedances is binomial with ``n / (n + n0)``
(the conditional test :func:`~detectors.binomial.binomial_tail` also decides concept drift
with), which carries the baseline's own uncertainty. Counts against the reference are exact:
each bucket counts its latencies above the reference p99 as they arrive. A rise must also be
material: the window's p99 at least ``1 + min_rise`` times the threshold.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(3)
>>> latency = LatencyWindow(reference_size=2000, window=1000)
>>> latency.update_many(rng.lognormal(3.0, 0.5, 3000).tolist())  # the window slid 12 times
12
>>> reference = latency.reference_p99
>>> round(reference)  # exp(3 + 2.326 * 0.5)
64
>>> latency.rise().significant
False
>>> _ = latency.update_many((1.5 * rng.lognormal(3.0, 0.5, 1000)).tolist())
>>> rise = latency.rise()
>>> rise.significant, round(rise.p99 / reference, 1)
(True, 1.5)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from fastdigest import TDigest

from detectors.base import StateError
from detectors.binomial import binomial_tail
from detectors.saved_state import read_format, stamp

__all__ = ["LatencyWindow", "Rise", "QUANTILES"]

#: The quantiles exposed.
QUANTILES = (0.5, 0.95, 0.99)
# Centroids per digest: ~1.5 % relative error of a 1,000-latency window's p99, ~2 KB of state.
_WINDOW_CENTROIDS = 50
_REFERENCE_CENTROIDS = 100
_TAIL = 0.01  # the share of a baseline above its p99
_MAX_LATENCY_MS = 1e12


@dataclass(frozen=True)
class Rise:
    """A window's p99 against a threshold ``q`` (a baseline's p99)."""

    p99: float
    threshold: float
    #: Latencies above ``threshold``: in the window, and in the baseline (of ``n0``).
    exceed: int
    n: int
    exceed_base: int
    n_base: int
    p_value: float
    min_rise: float
    alpha: float

    @property
    def line(self) -> float:
        """The p99 a material rise reaches."""
        return self.threshold * (1 + self.min_rise)

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha and self.p99 >= self.line

    def details(self) -> dict[str, float | int]:
        return {
            "p99_ms": round(self.p99, 3),
            "baseline_p99_ms": round(self.threshold, 3),
            "exceed_window": self.exceed,
            "window": self.n,
            "exceed_baseline": self.exceed_base,
            "baseline": self.n_base,
            "p_value": float(f"{self.p_value:.3g}"),
        }


def _digest(max_centroids: int) -> TDigest:
    return TDigest(max_centroids)


def _dump_digest(digest: TDigest) -> dict[str, Any] | None:
    # (An empty digest's min and max are NaN, which JSON cannot hold: saved as None.)
    return digest.to_dict() if digest.n_values else None


def _load_digest(data: Any, max_centroids: int) -> TDigest:
    if data is None:
        return _digest(max_centroids)
    if not isinstance(data, dict):
        raise StateError("a latency digest must be a mapping")
    centroids = data.get("centroids", [])
    if not isinstance(centroids, list) or len(centroids) > max_centroids + 1:
        raise StateError("latency digest out of bounds")
    try:
        return TDigest.from_dict(data)
    except (TypeError, ValueError, KeyError) as exc:
        raise StateError(f"latency digest: {exc}") from None


class LatencyWindow:
    """Latencies (ms) of one version: the reference, the rolling window, exceedance counts.

    Parameters
    ----------
    reference_size
        The version's first latencies: its reference p99.
    window
        Latencies in the rolling window (after the reference).
    buckets
        Digests the window is made of (it slides by ``window / buckets``).
    alpha
        Significance of a rise (:meth:`rise`).
    min_rise
        A rise must bring the window's p99 to at least ``1 + min_rise`` times the threshold.
    """

    #: Layout of :meth:`to_state` (see :mod:`detectors.saved_state`).
    STATE_FORMAT: ClassVar[int] = 1

    def __init__(
        self,
        reference_size: int = 2000,
        window: int = 1000,
        buckets: int = 4,
        alpha: float = 1e-4,
        min_rise: float = 0.2,
    ) -> None:
        if reference_size < 100 or window < buckets or buckets < 1:
            raise ValueError("need reference_size >= 100 and window >= buckets >= 1")
        self.reference_size = reference_size
        self.window = window
        self.buckets = buckets
        self.bucket_size = window // buckets
        self.alpha = alpha
        self.min_rise = min_rise
        self.n = 0
        self.reference = _digest(_REFERENCE_CENTROIDS)
        self.reference_p99 = math.nan
        # Full buckets (oldest first) and the one filling: [digest, n, above reference p99,
        # above the watched threshold].
        self._full: list[list[Any]] = []
        self._filling = self._bucket()
        #: A baseline's p99 whose exceedances are counted exactly (the last good version's),
        #: and the baseline's (exceedances, size).
        self.watched: float | None = None
        self.baseline: tuple[int, int] | None = None
        self._cached: dict[float, float] | None = None

    def _bucket(self) -> list[Any]:
        return [_digest(_WINDOW_CENTROIDS), 0, 0, 0]

    # -- reading -------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether the reference is complete."""
        return not math.isnan(self.reference_p99)

    @property
    def window_n(self) -> int:
        return sum(b[1] for b in self._full) + self._filling[1]

    @property
    def window_full(self) -> bool:
        return self.window_n >= self.window

    def quantiles(self) -> dict[float, float]:
        """p50, p95, p99 of the window (of the reference while it fills); empty before any."""
        if self._cached is None:
            parts = [b[0] for b in (*self._full, self._filling) if b[1]]
            if parts:
                merged = parts[0].copy()
                for part in parts[1:]:
                    merged.merge_inplace(part)
            elif self.reference.n_values:
                merged = self.reference
            else:
                self._cached = {}
                return self._cached
            self._cached = {q: float(merged.quantile(q)) for q in QUANTILES}
        return self._cached

    @property
    def p99(self) -> float:
        return self.quantiles().get(0.99, math.nan)

    def rise(self) -> Rise:
        """The window's p99 against the version's reference p99 (about 1 % of the reference
        exceeds it), on exact counts."""
        buckets = (*self._full, self._filling)
        k = sum(b[2] for b in buckets)
        return self._rise(
            self.reference_p99, k, round(_TAIL * self.reference_size), self.reference_size
        )

    def rise_over_baseline(self) -> Rise:
        """The window's p99 against the watched baseline's p99 (see :meth:`watch`)."""
        assert self.baseline is not None
        assert self.watched is not None
        k = sum(b[3] for b in (*self._full, self._filling))
        k0, n0 = self.baseline
        return self._rise(self.watched, k, k0, n0)

    def _rise(self, q: float, k: int, k0: int, n0: int) -> Rise:
        n = self.window_n
        p = binomial_tail(k + k0, n / (n + n0), k) if n else 1.0
        return Rise(self.p99, q, k, n, k0, n0, p, self.min_rise, self.alpha)

    # -- updating ------------------------------------------------------------------------------

    def update_many(self, values: Sequence[float]) -> int:
        """Add latencies (ms); return how many window buckets they completed (the checks due)."""
        if not isinstance(values, list):
            values = [float(v) for v in values]
        if not values:
            return 0
        self._cached = None
        # (Beyond 1e12 ms, 31 years, a latency is a bug in its producer: counted as that, so
        # the digest's sums stay finite and its state JSON.)
        if max(values) > _MAX_LATENCY_MS:
            values = [min(v, _MAX_LATENCY_MS) for v in values]
        if not self.ready:
            take = min(len(values), self.reference_size - self.reference.n_values)
            self.reference.batch_update(values[:take])
            if self.reference.n_values >= self.reference_size:
                self._freeze_reference()
        start = 0
        completed = 0
        size = self.bucket_size
        # (A batch holds a version's few dozen latencies: plain Python beats numpy here.)
        while start < len(values):
            bucket = self._filling
            take = min(len(values) - start, size - bucket[1])
            chunk = values[start : start + take] if start or take < len(values) else values
            bucket[0].batch_update(chunk)
            bucket[1] += take
            if self.ready:
                q = self.reference_p99
                bucket[2] += sum(1 for v in chunk if v > q)
            watched = self.watched
            if watched is not None:
                bucket[3] += sum(1 for v in chunk if v > watched)
            self.n += take
            start += take
            if bucket[1] >= size:
                self._full.append(bucket)
                if len(self._full) > self.buckets:
                    del self._full[0]
                self._filling = self._bucket()
                completed += 1
        return completed

    def _freeze_reference(self) -> None:
        """The reference is complete: its p99 is the threshold, and the window's latencies so
        far (they came with the reference's last ones) are counted against it from their
        digests, once."""
        self.reference_p99 = float(self.reference.quantile(0.99))
        for bucket in (*self._full, self._filling):
            bucket[2] = (
                round(bucket[1] * (1 - bucket[0].cdf(self.reference_p99))) if bucket[1] else 0
            )

    def watch(self, threshold: float, base_n: int) -> None:
        """Judge this window against a baseline from now on: another version's p99
        ``threshold`` over its window of ``base_n`` latencies (about 1 % of which exceed it).
        Exceedances are counted exactly from now on; the window so far is estimated from its
        digests, once."""
        for bucket in (*self._full, self._filling):
            bucket[3] = round(bucket[1] * (1 - bucket[0].cdf(threshold))) if bucket[1] else 0
        self.watched = threshold
        self.baseline = (round(_TAIL * base_n), base_n)

    # -- state ---------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return stamp(
            self.STATE_FORMAT,
            {
                "n": self.n,
                "reference": _dump_digest(self.reference),
                "reference_p99": None if not self.ready else self.reference_p99,
                "buckets": [
                    [_dump_digest(b[0]), b[1], b[2], b[3]] for b in (*self._full, self._filling)
                ],
                "watched": self.watched,
                "baseline": None if self.baseline is None else list(self.baseline),
            },
        )

    def load_state(self, state: dict[str, Any]) -> None:
        read_format(state, "LatencyWindow", self.STATE_FORMAT)
        self.n = int(state["n"])
        self.reference = _load_digest(state["reference"], _REFERENCE_CENTROIDS)
        p99 = state["reference_p99"]
        self.reference_p99 = math.nan if p99 is None else float(p99)
        buckets = state["buckets"]
        if not 1 <= len(buckets) <= self.buckets + 1:
            raise StateError("latency buckets out of bounds")
        loaded = []
        for digest, n, above, watched in buckets:
            n, above, watched = int(n), int(above), int(watched)
            if not (0 <= above <= n <= self.bucket_size and 0 <= watched <= n):
                raise StateError("latency bucket counts out of bounds")
            loaded.append([_load_digest(digest, _WINDOW_CENTROIDS), n, above, watched])
        self._full, self._filling = loaded[:-1], loaded[-1]
        watched_at = state["watched"]
        self.watched = None if watched_at is None else float(watched_at)
        baseline = state["baseline"]
        if baseline is not None:
            k0, n0 = int(baseline[0]), int(baseline[1])
            if not 0 <= k0 <= n0:
                raise StateError("latency baseline out of bounds")
            self.baseline = (k0, n0)
        else:
            self.baseline = None
        self._cached = None
