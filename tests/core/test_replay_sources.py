"""Replay from tables of predictions and labels (CSV, Parquet): the same CloudEvents as the same
events replayed from a JSON-lines file, and a row that breaks the contract dead-lettered."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from schemas import Topics
from stream.replay import replay_file, replay_source
from stream.replay_sources import SourceError, table_records
from tests import scenarios
from tests.core.test_golden import CONFIG, lines

TOPICS = Topics()


def events() -> tuple[list[dict], list[dict]]:
    """A rollout (two versions, labels, a rollback) and a covariate shift (features, a
    categorical, scores): predictions and labels as the contract's JSON."""
    records = scenarios.rollout() + scenarios.covariate_shift(n=3000)
    predictions = [orjson.loads(v) for k, v in records if k == "predictions"]
    labels = [orjson.loads(v) for k, v in records if k == "labels"]
    return predictions, labels


def rows(predictions: list[dict]) -> list[dict]:
    """Predictions flattened into table rows (features as columns)."""
    out = []
    for event in predictions:
        row = {k: v for k, v in event.items() if k != "features"}
        row.update({f"features.{k}": v for k, v in (event.get("features") or {}).items()})
        out.append(row)
    return out


def the_file_replay(tmp_path: Path, predictions: list[dict], labels: list[dict]) -> bytes:
    """The same events in the tables' order (timestamp; predictions first), as a file."""
    timed = [(e["timestamp"], 0, i, "predictions", e) for i, e in enumerate(predictions)]
    timed += [(e["timestamp"], 1, i, "labels", e) for i, e in enumerate(labels)]
    timed.sort(key=lambda t: t[:3])
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines([(kind, orjson.dumps(e)) for *_, kind, e in timed])) + b"\n")
    out = io.BytesIO()
    replay_file(path, out, config=CONFIG)
    return out.getvalue()


def write_csv(path: Path, table: list[dict]) -> None:
    columns = sorted({k for row in table for k in row})
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        for row in table:
            writer.writerow(
                {k: ("true" if v is True else "false" if v is False else v) for k, v in row.items()}
            )


def typed(table: list[dict]) -> pa.Table:
    """A Parquet table of every column (pyarrow infers the columns from the first row)."""
    columns = sorted({k for row in table for k in row})
    return pa.Table.from_pylist([{k: row.get(k) for k in columns} for row in table])


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_tables_replay_as_the_same_events_from_a_file(tmp_path, kind):
    predictions, labels = events()
    expected = the_file_replay(tmp_path, predictions, labels)
    assert expected.count(b"io.driftline.command.rollback") == 1
    assert b"io.driftline.alert.data_drift" in expected
    table_p, table_l = tmp_path / f"p.{kind}", tmp_path / f"l.{kind}"
    if kind == "csv":
        write_csv(table_p, rows(predictions))
        write_csv(table_l, labels)
    else:
        pq.write_table(typed(rows(predictions)), table_p)
        pq.write_table(typed(labels), table_l)
    out = io.BytesIO()
    summary = replay_source(table_records(table_p, table_l, TOPICS), out, title="t", config=CONFIG)
    assert out.getvalue() == expected
    assert summary.lines == len(predictions) + len(labels)


def test_a_row_that_breaks_the_contract_is_dead_lettered_with_its_reason(tmp_path):
    table = tmp_path / "p.csv"
    write_csv(
        table,
        [
            {"prediction_id": "a", "timestamp": "2026-11-30T10:00:00Z", "prediction": 1, "x": 0.5},
            {"prediction_id": "b", "timestamp": 1_795_996_800, "prediction": 1, "x": 0.5},
        ],
    )
    out = io.BytesIO()
    summary = replay_source(
        table_records(table, None, TOPICS, model_id="m", model_version="1"), out, title="t"
    )
    assert summary.events["prediction"] == 1  # the ISO time: read
    letters = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [(d["reason"], d["path"]) for d in letters] == [("invalid_value", "$.timestamp")]
    assert letters[0]["line"] == 1  # (the seconds sort first)


def test_an_unknown_table_format_is_refused(tmp_path):
    path = tmp_path / "p.xlsx"
    path.write_bytes(b"")
    with pytest.raises(SourceError, match=r"expected a \.csv"):
        list(table_records(path, None, TOPICS))
