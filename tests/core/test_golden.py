"""Golden outputs: the scenario suite through the core, compared byte for byte.

Each scenario's records go through :func:`stream.replay.replay` (decoder, :class:`Monitor`,
event-time ticks); every CloudEvent and dead letter it yields, and every model's saved state
at the end, must equal the committed fixtures in ``fixtures/golden/`` (states gzipped). A
refactoring that changes no behaviour leaves them equal; a change that means to alter
behaviour regenerates them and shows the difference in review::

    DRIFTLINE_REGOLD=1 python -m pytest tests/core/test_golden.py
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from detectors.config import MonitorConfig
from detectors.monitor import Monitor
from schemas import Topics
from schemas.cloudevents import ALERT_TYPES, COMMAND_TYPES
from stream.replay import replay
from tests import scenarios
from tests.scenarios import MALFORMED, Record

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
#: The configuration of the scenarios' models (only failing_segment's, estimated_drop's and
#: estimated_mae_rise's models have settings).
CONFIG = MonitorConfig.from_dict(
    {
        "models": {
            "m-segment": scenarios.SEGMENTED,
            "m-estimate": scenarios.ESTIMATED,
            "m-dle": scenarios.ESTIMATED,
        }
    }
)
REGOLD = os.environ.get("DRIFTLINE_REGOLD") == "1"
TOPICS = Topics()

SCENARIOS: dict[str, Callable[[], list[Record]]] = {
    "covariate_shift": scenarios.covariate_shift,
    "concept_drift": scenarios.concept_drift,
    "rollout": scenarios.rollout,
    "stall": scenarios.stall,
    "regression": scenarios.regression,
    "multiclass": scenarios.multiclass,
    "recall_drop": scenarios.recall_drop,
    "quality_and_labels": scenarios.quality_and_labels,
    "escalating_drift": scenarios.escalating_drift,
    "slow_rollout": scenarios.slow_rollout,
    "failing_segment": scenarios.failing_segment,
    "estimated_drop": scenarios.estimated_drop,
    "estimated_mae_rise": scenarios.estimated_mae_rise,
    "malformed": lambda: [(kind, payload) for kind, payload, _ in MALFORMED],
}


def lines(records: list[Record]) -> list[bytes]:
    """The records as ``driftline replay`` reads them."""
    out = []
    for kind, payload in records:
        topic = getattr(TOPICS, kind)
        try:
            line = {"topic": topic, "value": orjson.loads(payload)}
        except orjson.JSONDecodeError:
            line = {"topic": topic, "raw": payload.decode("utf-8", "replace")}
        out.append(orjson.dumps(line))
    return out


def run(records: list[Record]) -> tuple[bytes, bytes]:
    """(every output, one per line; every model's saved state) of a replay of ``records``."""
    monitor = Monitor(CONFIG)
    outputs = []
    for letter, cloudevent in replay(lines(records), monitor=monitor):
        if letter is None:
            outputs.append(cloudevent)
        else:
            # ``cause`` is the JSON parser's own wording: not driftline's to pin.
            letter = {key: value for key, value in letter.items() if key != "cause"}
            outputs.append(orjson.dumps(letter, option=orjson.OPT_SORT_KEYS))
    states = {model_id: monitor.model_state(model_id) for model_id in sorted(monitor.models)}
    return b"".join(o + b"\n" for o in outputs), orjson.dumps(states, option=orjson.OPT_SORT_KEYS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_outputs_and_states_equal_the_golden_ones(name):
    outputs, states = run(SCENARIOS[name]())
    # (States are ~3 MB of JSON in all: kept gzipped; ``zcat`` reads them.)
    events_path, states_path = GOLDEN / f"{name}.jsonl", GOLDEN / f"{name}.state.json.gz"
    if REGOLD:
        events_path.write_bytes(outputs)
        states_path.write_bytes(gzip.compress(states, mtime=0))
    golden = events_path.read_bytes().splitlines()
    got = outputs.splitlines()
    for number, (want, have) in enumerate(zip(golden, got, strict=False), start=1):
        assert have == want, f"{name}: output {number} differs"
    assert len(got) == len(golden), f"{name}: {len(got)} outputs, golden has {len(golden)}"
    want_states = orjson.loads(gzip.decompress(states_path.read_bytes()))
    have_states = orjson.loads(states)
    assert sorted(have_states) == sorted(want_states), f"{name}: other models"
    for model_id, want in want_states.items():
        path = first_difference(want, have_states[model_id], model_id)
        assert path is None, f"{name}: saved state differs at {path}"


def test_the_scenarios_exercise_what_the_core_decides():
    """The golden suite is only a net where it reaches: every kind of alert and command the
    core emits is in it, with dead letters."""
    kinds = set()
    for name in SCENARIOS:
        for line in (GOLDEN / f"{name}.jsonl").read_bytes().splitlines():
            event = orjson.loads(line)
            kinds.add(event["type"])
    expected = {*ALERT_TYPES.values(), *COMMAND_TYPES.values(), "io.driftline.deadletter"}
    assert expected <= kinds, expected - kinds


def first_difference(want: object, have: object, path: str) -> str | None:
    """Where two JSON values first differ (a readable failure for a state of 100 kB)."""
    if type(want) is not type(have):
        return path
    if isinstance(want, dict):
        assert isinstance(have, dict)
        if sorted(want) != sorted(have):
            return f"{path} (keys {sorted(set(want) ^ set(have))})"
        for key in want:
            found = first_difference(want[key], have[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(want, list):
        assert isinstance(have, list)
        if len(want) != len(have):
            return f"{path} (length {len(want)} != {len(have)})"
        for index, (a, b) in enumerate(zip(want, have, strict=True)):
            found = first_difference(a, b, f"{path}[{index}]")
            if found:
                return found
        return None
    return None if want == have else path
