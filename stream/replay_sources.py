"""Where ``driftline replay`` reads records from, besides a JSON-lines file: the input topics
over a time range, and tables of predictions and labels (CSV or Parquet). Each yields
:data:`~stream.replay.SourceItem` values, ``(number, topic, value)``, in the order the core should
see them; the core and its outputs are the same whatever the source.

**Topics** (:func:`kafka_records`). The three input topics from the first record at or after
``since`` (by ``offsets_for_times``) to the last before ``until`` (or the end each partition
had when the replay started), assigned by hand: no consumer group is joined, nothing is
committed, the live workers are not disturbed. Records are merged across topics and partitions
in record-timestamp order, as the worker applies them (stream/ordering.py); a partition that
runs ahead is paused so that memory stays bounded.

**Tables** (:func:`table_records`). A data scientist's batch-scoring output: a predictions
table and (optionally) a labels table, CSV (the header names the columns) or Parquet, mapped to
the contract by column name:

===========================  ==========================================================
column                       becomes
===========================  ==========================================================
``model_id``                 ``model_id`` (or ``--model-id`` for a table without it)
``model_version``            ``model_version`` (or ``--model-version``)
``prediction_id``            ``prediction_id`` (labels join on it)
``timestamp``                ``timestamp``: epoch milliseconds, or an ISO 8601 time
``prediction``, ``label``    as they are (CSV: ``true``/``false`` are booleans)
``score``                    a probability; ``score.<class>`` columns: a class map
``latency_ms``               ``latency_ms``
``tags.<name>``              a tag
any other (``features.``     a feature (the prefix, if there, is dropped)
prefix optional)
===========================  ==========================================================

In CSV every cell is text: one that reads as a number is a number (a categorical feature with
numeric codes: use Parquet, which keeps types), except the ids (``model_id``,
``model_version``, ``prediction_id``), which stay text; an empty cell is a missing value. An
integer id from a typed table is written as text (the contract's ids are strings). Rows are
sorted by timestamp (labels after predictions at the same time), then encoded as the contract's
JSON, so a row that breaks the contract is dead-lettered with its reason as on Kafka.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import math
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from schemas import Topics
from stream.replay import SourceItem
from stream.settings import Settings

__all__ = ["SourceError", "kafka_records", "parse_time", "table_records"]

#: Records buffered per partition before it is paused (the merge waits for the others).
_BUFFER = 5_000
_CONTRACT = {"model_id", "model_version", "prediction_id", "timestamp", "prediction", "score"}
#: Columns the contract types as strings: kept as text from CSV, and a number in a typed table
#: (a version column of integers) written as text.
_IDS = ("model_id", "model_version", "prediction_id")
_TEXT = set(_IDS)


class SourceError(Exception):
    """A source that cannot be read (a clear message for the command line)."""


def parse_time(text: str) -> int:
    """Epoch milliseconds of an ISO 8601 time (``Z`` or an offset; no zone: UTC) or of a
    number of milliseconds.

    >>> parse_time("2026-11-30T00:00:00Z"), parse_time("2026-11-30T01:00:00+01:00")
    (1795996800000, 1795996800000)
    >>> parse_time("1795996800000")
    1795996800000
    """
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise SourceError(f"{text!r} is neither an ISO 8601 time nor epoch milliseconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


# -- topics ------------------------------------------------------------------------------------


def kafka_records(settings: Settings, since: int, until: int | None = None) -> Iterator[SourceItem]:
    """The input topics' records from ``since`` to ``until`` (ms, record timestamps), merged in
    timestamp order (see the module's docstring)."""
    from aiokafka.errors import KafkaError

    loop = asyncio.new_event_loop()
    reader = _TopicReader(settings, since, until)
    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    try:
        # (A broker that cannot be reached is said once, in driftline's words, below.)
        client_log.setLevel(logging.CRITICAL)
        try:
            loop.run_until_complete(reader.start())
        except (KafkaError, OSError) as error:
            raise SourceError(
                f"cannot read the input topics at {settings.bootstrap_servers}: "
                f"{type(error).__name__}"
            ) from None
        finally:
            client_log.setLevel(level)
        yield from reader.merged(lambda: loop.run_until_complete(reader.fetch()))
    finally:
        loop.run_until_complete(reader.stop())
        loop.close()


class _TopicReader:
    def __init__(self, settings: Settings, since: int, until: int | None) -> None:
        self.settings = settings
        self.since = since
        self.until = until
        self.consumer: Any = None
        self.buffers: dict[Any, deque[tuple[int, int, str, bytes]]] = {}
        self.ends: dict[Any, int] = {}
        self.positions: dict[Any, int] = {}

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        topics = self.settings.topics
        names = [topics.predictions, topics.inputs, topics.labels]
        self.consumer = AIOKafkaConsumer(
            group_id=None, enable_auto_commit=False, **self.settings.kafka_kwargs()
        )
        await self.consumer.start()
        tps = []
        for name in names:
            partitions = self.consumer.partitions_for_topic(name)
            if partitions is None:
                await self.consumer._client.force_metadata_update()
                partitions = self.consumer.partitions_for_topic(name) or set()
            tps += [TopicPartition(name, p) for p in sorted(partitions)]
        if not tps:
            raise SourceError(f"none of the input topics exists: {', '.join(names)}")
        self.consumer.assign(tps)
        starts = await self.consumer.offsets_for_times(dict.fromkeys(tps, self.since))
        ends = await self.consumer.end_offsets(tps)
        if self.until is not None:
            until = await self.consumer.offsets_for_times(dict.fromkeys(tps, self.until))
            ends = {tp: until[tp].offset if until[tp] is not None else ends[tp] for tp in tps}
        for tp in tps:
            start = starts[tp]
            first = ends[tp] if start is None else start.offset
            self.ends[tp] = ends[tp]
            self.positions[tp] = first
            self.buffers[tp] = deque()
            if first < ends[tp]:
                self.consumer.seek(tp, first)
            else:
                self.consumer.pause(tp)

    def open(self, tp: Any) -> bool:
        """Whether ``tp`` has records left to fetch."""
        return self.positions[tp] < self.ends[tp]

    async def fetch(self) -> None:
        batch = await self.consumer.getmany(timeout_ms=1000, max_records=_BUFFER)
        for tp, messages in batch.items():
            buffer = self.buffers[tp]
            end = self.ends[tp]
            for message in messages:
                if message.offset >= end:
                    break
                buffer.append((message.timestamp, message.offset, tp.topic, message.value or b""))
            self.positions[tp] = messages[-1].offset + 1 if messages else self.positions[tp]
            if not self.open(tp) or len(buffer) >= _BUFFER:
                self.consumer.pause(tp)

    def merged(self, fetch: Any) -> Iterator[SourceItem]:
        """Records in timestamp order: one is released once every partition still open has a
        record buffered (or has none left), so nothing older can come later."""
        number = 0
        while True:
            waiting = [tp for tp, b in self.buffers.items() if not b and self.open(tp)]
            if waiting:
                for tp in waiting:
                    self.consumer.resume(tp)
                fetch()
                continue
            heads = [
                (b[0][0], b[0][1], i, tp) for i, (tp, b) in enumerate(self.buffers.items()) if b
            ]
            if not heads:
                return
            _, _, _, tp = min(heads)
            _, _, topic, value = self.buffers[tp].popleft()
            if self.open(tp) and len(self.buffers[tp]) < _BUFFER // 2:
                self.consumer.resume(tp)
            number += 1
            yield number, topic, value

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()


# -- tables ------------------------------------------------------------------------------------


def table_records(
    predictions: Path | None,
    labels: Path | None,
    topics: Topics,
    *,
    model_id: str | None = None,
    model_version: str | None = None,
) -> Iterator[SourceItem]:
    """The rows of a predictions table and a labels table as records of the input topics, in
    timestamp order (see the module's docstring)."""
    rows: list[tuple[float, int, int, str, bytes]] = []
    for order, (path, topic, make) in enumerate(
        ((predictions, topics.predictions, _prediction), (labels, topics.labels, _label))
    ):
        if path is None:
            continue
        for index, row in enumerate(_read_table(path)):
            event = make(row, model_id, model_version)
            timestamp = event.get("timestamp")
            key = timestamp if isinstance(timestamp, int | float) else math.inf
            rows.append((key, order, index, topic, orjson.dumps(event, option=_OPTIONS)))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    for number, (_, _, _, topic, value) in enumerate(rows, start=1):
        yield number, topic, value


# (numpy values from Parquet serialise as numbers; NaN as null: a missing value)
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def _read_table(path: Path) -> Iterable[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise SourceError(
                "reading Parquet needs pyarrow: pip install 'driftline[parquet]'"
            ) from None
        try:
            table = pq.read_table(path)
        except (OSError, ValueError) as error:
            raise SourceError(f"{path}: not a readable Parquet file ({error})") from None
        return table.to_pylist()
    if suffix in (".csv", ".tsv", ".txt"):
        handle = path.open(newline="", encoding="utf-8")
        dialect = csv.excel_tab if suffix == ".tsv" else csv.excel
        return (
            {k: v or None if k in _TEXT else _cell(v) for k, v in row.items() if k}
            for row in csv.DictReader(handle, dialect=dialect)
        )
    raise SourceError(f"{path}: expected a .csv, .tsv or .parquet file")


def _cell(text: str | None) -> Any:
    """A CSV cell's value: empty -> None, a number, true/false, else the text."""
    if text is None or text == "":
        return None
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def _timestamp(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_time(value)
        except SourceError:
            return value  # (the decoder says what is wrong with it)
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return value


def _prediction(row: dict[str, Any], model_id: str | None, version: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {}
    features: dict[str, Any] = {}
    tags: dict[str, Any] = {}
    classes: dict[str, Any] = {}
    for column, value in row.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if column in _CONTRACT or column == "latency_ms":
            event[column] = value
        elif column.startswith("tags."):
            tags[column[5:]] = value if isinstance(value, str) else str(value)
        elif column.startswith("score."):
            classes[column[6:]] = value
        else:
            features[column.removeprefix("features.")] = value
    event.setdefault("model_id", model_id)
    event.setdefault("model_version", version)
    _ids_as_text(event)
    if "timestamp" in event:
        event["timestamp"] = _timestamp(event["timestamp"])
    if classes and "score" not in event:
        event["score"] = classes
    if features:
        event["features"] = features
    if tags:
        event["tags"] = tags
    return {k: v for k, v in event.items() if v is not None}


def _ids_as_text(event: dict[str, Any]) -> None:
    for name in _IDS:
        value = event.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            event[name] = str(value)


def _label(row: dict[str, Any], model_id: str | None, version: str | None) -> dict[str, Any]:
    event = {k: v for k, v in row.items() if v is not None}
    event.setdefault("model_id", model_id)
    _ids_as_text(event)
    if "timestamp" in event:
        event["timestamp"] = _timestamp(event["timestamp"])
    return {k: v for k, v in event.items() if v is not None}
