"""Scenario tests through ``driftline replay``: the core as users run it over a file."""

from __future__ import annotations

import heapq
import io
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from schemas import Topics
from stream.replay import replay_file
from tests import scenarios
from tests.scenarios import MALFORMED, T0, Record

TOPICS = Topics()


def write(records: list[Record], path: Path) -> Path:
    with path.open("wb") as f:
        for kind, payload in records:
            topic = getattr(TOPICS, kind)
            try:
                value = orjson.loads(payload)
            except orjson.JSONDecodeError:
                line = {"topic": topic, "raw": payload.decode("utf-8", "replace")}
            else:
                line = {"topic": topic, "value": value}
            f.write(orjson.dumps(line) + b"\n")
    return path


def run(records: list[Record], tmp_path: Path, **kwargs) -> tuple[list[dict], object]:
    source = write(records, tmp_path / "events.jsonl")
    out = io.BytesIO()
    summary = replay_file(source, out, **kwargs)
    return [orjson.loads(line) for line in out.getvalue().splitlines()], summary


def alerts(out: list[dict], kind: str | None = None) -> list[dict]:
    return [
        o
        for o in out
        if o["type"].startswith("io.driftline.alert.")
        and (kind is None or o["type"].endswith("." + kind))
    ]


def commands(out: list[dict], kind: str) -> list[dict]:
    return [o for o in out if o["type"] == f"io.driftline.command.{kind}"]


def _event_time(record: Record) -> int:
    try:
        return int(orjson.loads(record[1])["timestamp"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return 0


def merge(*streams: list[Record]) -> list[Record]:
    """Several scenarios at once, interleaved by event time as real traffic would be."""
    return list(heapq.merge(*streams, key=_event_time))


def test_covariate_shift_on_one_feature_alarms_on_that_feature_only(tmp_path):
    out, _ = run(scenarios.covariate_shift(), tmp_path)
    drift = alerts(out, "data_drift")
    assert [(a["data"]["feature"], a["data"]["status"]) for a in drift] == [("f1", "firing")]
    fired_at = drift[0]["data"]["event_time"]
    # the shift starts at record 2500, i.e. 250 s after T0
    assert "2026-11-21T10:04:10" <= fired_at < "2026-11-21T10:04:30", fired_at
    assert drift[0]["data"]["statistic"] > drift[0]["data"]["threshold"]
    others = [a for a in alerts(out) if a["data"].get("feature") not in (None, "f1")]
    assert others == []
    assert alerts(out, "prediction_drift") == []


def test_abrupt_concept_drift_gives_one_retrain_command(tmp_path):
    out, _ = run(scenarios.concept_drift(), tmp_path)
    concept = alerts(out, "concept_drift")
    assert [a["data"]["status"] for a in concept] == ["firing"]
    retrains = commands(out, "retrain")
    assert len(retrains) == 1
    data = retrains[0]["data"]
    assert data["model_id"] == "m-concept"
    assert data["model_version"] == "1"
    assert data["reason"] == "concept_drift"
    assert data["evidence"]["statistic"] > data["evidence"]["threshold"]
    details = data["evidence"]["details"]
    assert details["error_rate_recent"] > 1.5 * details["error_rate_reference"]
    # the window of new data starts near the change (record 2000: 200 s after T0)
    assert "2026-11-21T10:03:10" <= data["window"]["start"] <= "2026-11-21T10:03:40", data
    assert data["window"]["end"] == retrains[0]["time"]
    assert alerts(out, "data_drift") == []  # the inputs did not change


def test_a_worse_new_version_gives_one_rollback(tmp_path):
    out, _ = run(scenarios.rollout(new_error=0.3), tmp_path)
    rollbacks = commands(out, "rollback")
    assert len(rollbacks) == 1
    data = rollbacks[0]["data"]
    assert (data["from_version"], data["to_version"]) == ("2", "1")
    assert (
        data["evidence"]["details"]["error_rate_new"]
        > data["evidence"]["details"]["error_rate_old"]
    )
    assert commands(out, "retrain") == []


def test_an_equally_good_new_version_gives_no_rollback(tmp_path):
    out, _ = run(scenarios.rollout(new_error=0.1), tmp_path)
    assert commands(out, "rollback") == []
    assert commands(out, "retrain") == []


def test_a_stalled_model_among_live_ones_gives_one_stall_alert_and_a_resolve(tmp_path):
    out, _ = run(scenarios.stall(), tmp_path)
    stalls = alerts(out, "input_stall")
    assert [(a["subject"], a["data"]["status"]) for a in stalls] == [
        ("m-silent", "firing"),
        ("m-silent", "resolved"),
    ]
    firing, resolved = stalls
    # last event at record 999 (99.9 s), learned timeout floored at 60 s
    assert firing["data"]["event_time"] == "2026-11-21T10:02:39.900Z"
    assert firing["data"]["started_at"] == resolved["data"]["started_at"]
    assert resolved["data"]["event_time"] == "2026-11-21T10:04:10.000Z"  # resumed at 250 s
    assert firing["data"]["statistic"] > firing["data"]["threshold"] == 60.0


def test_malformed_records_are_all_dead_lettered_and_counted(tmp_path):
    good = scenarios.covariate_shift(n=50)
    records = [*good[:20], *[(kind, payload) for kind, payload, _ in MALFORMED], *good[20:]]
    out, summary = run(records, tmp_path)
    letters = [o for o in out if o["type"] == "io.driftline.deadletter"]
    assert [letter["reason"] for letter in letters] == [reason for _, _, reason in MALFORMED]
    for letter in letters:
        assert letter["error"].startswith(letter["path"] + ": ")
        assert letter["line"] >= 1
    assert summary.events["prediction"] == 50  # every good record was still processed
    assert sum(summary.deadletters.values()) == len(MALFORMED)
    assert summary.lines == len(records)


def test_scenarios_running_together_do_not_interfere(tmp_path):
    # all four run for the same 400 s of event time
    records = merge(
        scenarios.covariate_shift(n=4000),
        scenarios.concept_drift(n=4000),
        scenarios.rollout(new_error=0.3, n_old=2000, n_new=2000),
        scenarios.stall(n=4000),
    )
    out, summary = run(records, tmp_path)
    assert [a["data"]["feature"] for a in alerts(out, "data_drift")] == ["f1"]
    assert [c["subject"] for c in commands(out, "retrain")] == ["m-concept"]
    assert [c["subject"] for c in commands(out, "rollback")] == ["m-rollout"]
    assert {a["subject"] for a in alerts(out, "input_stall")} == {"m-silent"}
    assert summary.models == 5  # m-shift, m-concept, m-rollout, m-live, m-silent


def test_replay_is_deterministic(tmp_path):
    records = merge(scenarios.concept_drift(), scenarios.stall(), scenarios.covariate_shift())
    first, _ = run(records, tmp_path)
    second, _ = run(records, tmp_path)
    assert first == second
    assert len(first) > 3


def test_every_alert_id_is_fixed_by_its_decision(tmp_path):
    out, _ = run(merge(scenarios.stall(), scenarios.concept_drift()), tmp_path)
    ids = [o["id"] for o in out]
    assert len(ids) == len(set(ids)), "two different decisions share an id"


def test_config_file_changes_thresholds(tmp_path):
    config = tmp_path / "driftline.yaml"
    config.write_text("models:\n  m-silent:\n    stall_inputs: {timeout: 20s}\n")
    from detectors.config import MonitorConfig

    out, _ = run(scenarios.stall(), tmp_path, config=MonitorConfig.from_yaml(config))
    firing = alerts(out, "input_stall")[0]
    assert firing["data"]["threshold"] == 20.0
    assert firing["data"]["event_time"] == "2026-11-21T10:01:59.900Z"


def test_cli_replay_writes_jsonl_and_a_summary(tmp_path):
    source = write(scenarios.stall(), tmp_path / "in.jsonl")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stream.cli",
            "replay",
            str(source),
            "--out",
            str(tmp_path / "out.jsonl"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "replayed 4500 records" in result.stderr  # 3000 + 1500 while one is silent
    assert "input_stall=2" in result.stderr
    lines = (tmp_path / "out.jsonl").read_bytes().splitlines()
    assert [orjson.loads(x)["data"]["status"] for x in lines] == ["firing", "resolved"]


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        ("defaults:\n  join: {ttl: forever}\n", "defaults.join.ttl"),
        ("models:\n  m: {task: clf}\n", "models.m.task"),
        ("defaults: [1, 2]\n", "defaults"),
        ("key: [unclosed\n", "not valid YAML"),
    ],
)
def test_cli_refuses_a_bad_config_at_start(tmp_path, config_text, message):
    config = tmp_path / "bad.yaml"
    config.write_text(config_text)
    source = write(scenarios.stall(n=10), tmp_path / "in.jsonl")
    result = subprocess.run(
        [sys.executable, "-m", "stream.cli", "replay", str(source), "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_labels_before_their_predictions_still_join(tmp_path):
    records = scenarios.concept_drift(n=600, drift_at=10_000)
    labels = [r for r in records if r[0] == "labels"]
    predictions = [r for r in records if r[0] == "predictions"]
    out, summary = run(labels + predictions, tmp_path)  # every label first
    assert out == []
    from detectors.monitor import Monitor  # the counts live in the monitor's counters

    monitor = Monitor()
    from stream.replay import replay

    lines = write(labels + predictions, tmp_path / "x.jsonl").read_bytes().splitlines()
    list(replay(lines, monitor=monitor))
    assert monitor.counters.join == {"joined": 600}
    assert summary.events["label"] == 600


def test_timestamps_far_in_the_future_do_not_move_live_event_time():
    from detectors.monitor import Monitor
    from schemas import Label, Prediction

    monitor = Monitor()
    now = T0
    monitor.process(
        [
            Prediction(
                model_id="m", model_version="1", prediction_id="a", timestamp=T0, prediction=True
            )
        ],
        now=now,
    )
    # a clock-skewed producer stamps a label a year ahead: it must not expire everything
    monitor.process(
        [Label(model_id="m", prediction_id="zzz", timestamp=T0 + 365 * 86_400_000, label=True)],
        now=now,
    )
    assert monitor.models["m"].watermark == T0
    assert monitor.models["m"].join.pending == 1


@pytest.mark.parametrize("batch_size", [1, 97, 100_000])
def test_stalls_do_not_depend_on_the_batch_size(tmp_path, batch_size):
    out, _ = run(scenarios.stall(), tmp_path, batch_size=batch_size)
    stalls = [(a["data"]["status"], a["data"]["event_time"]) for a in alerts(out, "input_stall")]
    assert stalls == [
        ("firing", "2026-11-21T10:02:39.900Z"),
        ("resolved", "2026-11-21T10:04:10.000Z"),
    ]


def test_replay_output_is_identical_across_processes(tmp_path):
    """Same input, same output, byte for byte, even where Python's hash seed differs (macro
    metrics over string classes, categorical features) between two runs."""
    import os

    rng = __import__("random").Random(5)
    records = []
    for i in range(3000):
        truth = rng.choice(["a", "b", "c", "d"])
        predicted = truth if rng.random() < (0.9 if i < 1800 else 0.4) else rng.choice("abcd")
        payload = orjson.dumps(
            {
                "model_id": "multi",
                "model_version": "1",
                "prediction_id": str(i),
                "timestamp": T0 + i * 100,
                "prediction": predicted,
                "features": {"colour": rng.choice(["red", "green", "blue"])},
            }
        )
        records.append(("predictions", payload))
        records.append(
            (
                "labels",
                orjson.dumps(
                    {
                        "model_id": "multi",
                        "prediction_id": str(i),
                        "timestamp": T0 + i * 100 + 50,
                        "label": truth,
                    }
                ),
            )
        )
    source = write(records, tmp_path / "in.jsonl")
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"out-{seed}.jsonl"
        subprocess.run(
            [sys.executable, "-m", "stream.cli", "replay", str(source), "--out", str(out)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
            capture_output=True,
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert b"io.driftline.command.retrain" in outputs[0]
