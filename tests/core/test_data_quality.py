"""Data-quality alerts end to end through the Monitor: each check fires on the feature that has
the problem, resolves once it is gone, stays quiet on a feature whose nulls are normal, and does
not depend on how events were batched."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from detectors.monitor import Monitor
from schemas import Alert, Prediction
from tests.scenarios import T0

COUNTRIES = ["DE", "FR", "US", "BR"]
CLEAN, BROKEN, FIXED = 3_000, 2_000, 40_000  # events per phase; 100 ms apart
STEP_MS = 100


def clean(rng: random.Random) -> dict[str, Any]:
    return {
        "amount": rng.gauss(50, 10),
        # Null by design one time in ten: its baseline, not an issue.
        "discount": None if rng.random() < 0.1 else rng.random(),
        "country": rng.choice(COUNTRIES),
    }


BREAKAGES: dict[str, tuple[str, str, Callable[[dict[str, Any], random.Random], None]]] = {
    "nulls": ("nulls", "amount", lambda f, rng: f.update(amount=None)),
    "missing": ("nulls", "amount", lambda f, rng: f.pop("amount")),
    "type_change": ("type_change", "amount", lambda f, rng: f.update(amount="50.0")),
    "unknown_category": ("unknown_category", "country", lambda f, rng: f.update(country="XX")),
    "out_of_range": ("out_of_range", "amount", lambda f, rng: f.update(amount=1e6)),
}


def stream(breakage: str | None, share: float = 0.3, seed: int = 1) -> list[Prediction]:
    """Clean, then ``share`` of events broken, then clean again for a long while."""
    rng = random.Random(seed)
    events = []
    for i in range(CLEAN + BROKEN + FIXED):
        features = clean(rng)
        if breakage and CLEAN <= i < CLEAN + BROKEN and rng.random() < share:
            BREAKAGES[breakage][2](features, rng)
        events.append(
            Prediction(
                model_id="m",
                model_version="1",
                prediction_id=f"p{i}",
                timestamp=T0 + i * STEP_MS,
                prediction=rng.random() < 0.5,
                features=features,
            )
        )
    return events


def quality_alerts(events: list[Prediction], batch: int = 500) -> list[Alert]:
    monitor = Monitor()
    out = []
    for start in range(0, len(events), batch):
        out += monitor.process(events[start : start + batch])
    return [a for a in out if isinstance(a, Alert) and a.type.endswith(".data_quality")]


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_each_check_fires_on_the_broken_feature_then_resolves(breakage):
    check, feature, _ = BREAKAGES[breakage]
    alerts = quality_alerts(stream(breakage))
    assert [(a.data.signal, a.data.feature, a.data.status) for a in alerts] == [
        (check, feature, "firing"),
        (check, feature, "resolved"),
    ]
    firing, resolved = alerts
    broken_at = T0 + CLEAN * STEP_MS
    fixed_at = T0 + (CLEAN + BROKEN) * STEP_MS
    fired_ms = _ms(firing.data.event_time)
    # 30 % broken against a 5 % threshold: well within the first window of 1,000 values.
    assert broken_at <= fired_ms <= broken_at + 1_000 * STEP_MS
    assert firing.data.statistic > firing.data.threshold
    # Resolved after the window has clean values again and resolve_after (5 min) has passed.
    assert (
        fixed_at + 300_000 <= _ms(resolved.data.event_time) <= fixed_at + 300_000 + 2_000 * STEP_MS
    )
    assert resolved.data.started_at == firing.data.started_at


def test_nulls_at_their_usual_rate_and_clean_data_raise_nothing():
    for seed in range(5):
        assert quality_alerts(stream(None, seed=seed)) == []


def test_a_small_rise_in_nulls_below_the_threshold_raises_nothing():
    # 3 % of amount null: under the 5 % excess a check needs (amount's baseline is 0).
    assert quality_alerts(stream("nulls", share=0.03)) == []


@pytest.mark.parametrize("batch", [1, 37, 5_000])
def test_the_alerts_do_not_depend_on_the_batch_size(batch):
    events = stream("type_change")
    reference = [(a.data.signal, a.data.feature, a.data.status) for a in quality_alerts(events)]
    got = [(a.data.signal, a.data.feature, a.data.status) for a in quality_alerts(events, batch)]
    assert got == reference


def _ms(rfc3339: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000)
