"""``driftline replay``: run the monitoring core over a file of recorded Kafka records.

Each input line is one record as it was (or would be) on Kafka::

    {"topic": "model.predictions", "value": {...the event...}}
    {"topic": "model.labels", "raw": "bytes that are not JSON"}

Output, one JSON object per line in the order emitted: every alert and command CloudEvent, and
for each rejected record a dead-letter line ``{"type": "io.driftline.deadletter", ...}`` with the
reason, path and error in driftline's words, and ``cause``: the parser's own message (or null),
informative only, as it may change between library versions. A summary goes to stderr. The
same input (and batch size) gives the same output.

Useful on its own: replay a log of production traffic with candidate thresholds (``--config``)
to see, before deploying them, which alerts and commands they would have raised.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgspec
import orjson

from detectors.config import MonitorConfig
from detectors.monitor import Monitor
from schemas import DecodeError, EventDecoder, Limits, Topics, encode
from schemas.events import Event
from stream.history import History
from stream.pages import report_page
from stream.views import model_view, models_view

__all__ = [
    "ReplaySummary",
    "SourceItem",
    "replay",
    "replay_file",
    "replay_records",
    "replay_source",
]

DEADLETTER_TYPE = "io.driftline.deadletter"


class _Record(msgspec.Struct):
    topic: str
    value: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b""))
    raw: str | None = None


_record = msgspec.json.Decoder(_Record)
_NOT_A_RECORD = 'not a replay record: expected a JSON object {"topic": ..., "value" or "raw": ...}'


@dataclass
class ReplaySummary:
    lines: int = 0
    events: Counter[str] = field(default_factory=Counter)
    deadletters: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    commands: Counter[str] = field(default_factory=Counter)
    #: Events of sampled models (``sample`` below 1) their sample left out, by kind.
    sampled: Counter[str] = field(default_factory=Counter)
    models: int = 0
    seconds: float = 0.0

    def describe(self) -> str:
        events = sum(self.events.values()) + sum(self.sampled.values())
        rate = events / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"replayed {self.lines} records in {self.seconds:.2f}s "
            f"({events} events, {rate:,.0f} events/s, {self.models} models)",
            "  events:      " + _fmt(self.events),
            "  dead-letter: " + _fmt(self.deadletters),
            "  alerts:      " + _fmt(self.alerts),
            "  commands:    " + _fmt(self.commands),
        ]
        if self.sampled:
            lines.insert(2, "  sampled out: " + _fmt(self.sampled))
        return "\n".join(lines)


def _fmt(counter: Counter[str]) -> str:
    if not counter:
        return "none"
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in sorted(counter.items()))


def _deadletter(
    line: int, topic: str | None, error: DecodeError, raw: bytes, index: int | None
) -> dict[str, Any]:
    text = raw.decode("utf-8", "replace")
    return {
        "type": DEADLETTER_TYPE,
        "line": line,
        "topic": topic,
        "index": index,
        "reason": error.reason,
        "path": error.path,
        "error": str(error),
        "cause": error.cause,
        "raw": text if len(text) <= 2048 else text[:2048] + "...",
    }


#: What a source of records gives: a record's number (a line, or its rank in the source), its
#: topic and value; or, for a line that is no record, its number and dead letter.
SourceItem = tuple[int, str, bytes] | tuple[int, dict[str, Any]]


def replay(
    lines: Iterable[bytes],
    *,
    monitor: Monitor,
    topics: Topics | None = None,
    limits: Limits | None = None,
    batch_size: int = 10_000,
    tick_ms: int = 5_000,
    history: History | None = None,
) -> Iterator[tuple[dict[str, Any] | None, bytes]]:
    """Replay JSON lines of records (see the module's docstring); yield ``(deadletter, b"")``
    or ``(None, cloudevent_bytes)`` in order (:func:`replay_records`)."""
    limits = limits or Limits()
    return replay_records(
        _records_of_lines(lines, limits.max_message_bytes + 4096),
        monitor=monitor,
        topics=topics,
        limits=limits,
        batch_size=batch_size,
        tick_ms=tick_ms,
        history=history,
    )


def _records_of_lines(lines: Iterable[bytes], max_line: int) -> Iterator[SourceItem]:
    """Each line's record, or its dead letter (a line carries a record and its JSON envelope:
    ``max_line`` allows a little more than a message)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(line) > max_line:
            error = DecodeError("too_large", "$", f"record line of {len(line)} bytes")
            yield number, _deadletter(number, None, error, line[:256], None)
            continue
        try:
            record = _record.decode(line)
        except msgspec.DecodeError as exc:
            error = DecodeError("invalid_json", "$", _NOT_A_RECORD, cause=str(exc))
            yield number, _deadletter(number, None, error, line, None)
            continue
        payload = record.raw.encode() if record.raw is not None else bytes(record.value)
        yield number, record.topic, payload


def replay_records(
    records: Iterable[SourceItem],
    *,
    monitor: Monitor,
    topics: Topics | None = None,
    limits: Limits | None = None,
    batch_size: int = 10_000,
    tick_ms: int = 5_000,
    history: History | None = None,
) -> Iterator[tuple[dict[str, Any] | None, bytes]]:
    """Replay records from any source (a file's lines, the topics over a time range, tables
    of predictions and labels); yield ``(deadletter, b"")`` or ``(None, cloudevent_bytes)`` in
    order.

    The monitor's clock is event time. Records go to the core in batches of ``batch_size``
    events, and a batch also ends whenever event time moved ``tick_ms`` past the last stall
    check, so a silence is noticed whatever the batch size (its alert is stamped last event +
    timeout, never the moment of the check). A ``history`` (for ``--report``) gets the alerts
    and commands, and a point per model after every batch, at the watermark.
    """
    topics = topics or Topics()
    decoder = EventDecoder(limits)
    kinds = topics.inputs_by_kind
    batch: list[Event] = []
    watermark: int | None = None
    pending_letters: list[dict[str, Any]] = []
    last_tick: int | None = None

    def flush() -> Iterator[tuple[dict[str, Any] | None, bytes]]:
        nonlocal last_tick
        for letter in pending_letters:
            yield letter, b""
        pending_letters.clear()
        emitted = []
        if batch:
            emitted = monitor.process(batch)
            batch.clear()
        if watermark is not None:
            last_tick = watermark
            emitted += monitor.tick(watermark)
        if history is not None:
            history.record(emitted)
            if watermark is not None:
                history.sample(monitor, watermark)
        for out in emitted:
            yield None, encode(out)

    for item in records:
        if len(item) == 2:
            pending_letters.append(item[1])  # type: ignore[misc]
            continue
        number, topic, payload = item  # type: ignore[misc]
        kind = kinds.get(topic)
        if kind is None:
            error = DecodeError("invalid_value", "$.topic", f"{topic!r} is not an input topic")
            pending_letters.append(_deadletter(number, topic, error, payload, None))
        else:
            decoded = decoder.decode_batch(kind, payload)
            batch.extend(decoded.events)
            for event in decoded.events:
                if watermark is None or event.timestamp > watermark:
                    watermark = event.timestamp
            for rejected in decoded.rejected:
                pending_letters.append(
                    _deadletter(number, topic, rejected.error, rejected.raw, rejected.index)
                )
        if len(batch) >= batch_size or (
            watermark is not None and (last_tick is None or watermark - last_tick >= tick_ms)
        ):
            yield from flush()
    yield from flush()


def replay_file(
    source: Path | str,
    out: IO[bytes],
    *,
    config: MonitorConfig | None = None,
    topics: Topics | None = None,
    limits: Limits | None = None,
    batch_size: int = 10_000,
    max_models: int = 1_000,
    max_features_per_model: int = 100,
    report: Path | None = None,
) -> ReplaySummary:
    """Replay a JSON-lines file (``-`` for stdin) into ``out``; return what happened. With a
    ``report`` path, also write the HTML report of the backtest there."""
    summary = ReplaySummary()
    handle = sys.stdin.buffer if str(source) == "-" else open(source, "rb")  # noqa: SIM115
    limits = limits or Limits()
    try:
        lines = _bounded_lines(handle, limits.max_message_bytes + 4096, summary)
        return replay_source(
            _records_of_lines(lines, limits.max_message_bytes + 4096),
            out,
            summary=summary,
            title=f"driftline replay of {Path(source).name}",
            config=config,
            topics=topics,
            limits=limits,
            batch_size=batch_size,
            max_models=max_models,
            max_features_per_model=max_features_per_model,
            report=report,
        )
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()


def replay_source(
    records: Iterable[SourceItem],
    out: IO[bytes],
    *,
    title: str,
    summary: ReplaySummary | None = None,
    config: MonitorConfig | None = None,
    topics: Topics | None = None,
    limits: Limits | None = None,
    batch_size: int = 10_000,
    max_models: int = 1_000,
    max_features_per_model: int = 100,
    report: Path | None = None,
) -> ReplaySummary:
    """Replay records from any source (:mod:`stream.replay_sources`) into ``out``, as
    :func:`replay_file` does a file's."""
    monitor = Monitor(config, max_models=max_models, max_features_per_model=max_features_per_model)
    # A report covers the whole replay: its step starts at a second and doubles as needed.
    history = History(step_ms=1_000, points=REPORT_POINTS, stretch=True) if report else None
    summary = summary or ReplaySummary()
    counted_lines = summary.lines
    start = time.perf_counter()
    seen = 0

    def counted() -> Iterator[SourceItem]:
        nonlocal seen
        for item in records:
            seen += 1
            yield item

    for letter, cloudevent in replay_records(
        counted(),
        monitor=monitor,
        topics=topics,
        limits=limits,
        batch_size=batch_size,
        history=history,
    ):
        if letter is not None:
            summary.deadletters[letter["reason"]] += 1
            out.write(orjson.dumps(letter) + b"\n")
        else:
            out.write(cloudevent + b"\n")
    summary.seconds = time.perf_counter() - start
    if summary.lines == counted_lines:  # (a source other than a file's lines: its records)
        summary.lines = seen
    summary.events.update(monitor.counters.events)
    summary.sampled.update(monitor.counters.sampled_by_kind())
    summary.alerts.update(monitor.counters.alerts)
    summary.commands.update(monitor.counters.commands)
    summary.models = len(monitor.models)
    if report is not None and history is not None:
        write_report(report, monitor, history, title)
    return summary


#: Points of each series in a replay's report.
REPORT_POINTS = 720


def write_report(path: Path, monitor: Monitor, history: History, title: str) -> None:
    """The report of a replay: its overview and every model's page, in one HTML file."""
    views = [model_view(monitor, history, model_id) for model_id in sorted(monitor.models)]
    html = report_page(models_view(monitor, history), [v for v in views if v], title)
    Path(path).write_text(html, encoding="utf-8")


def _bounded_lines(handle: IO[bytes], max_bytes: int, summary: ReplaySummary) -> Iterator[bytes]:
    """Lines of at most ``max_bytes`` (+1 to tell it was longer): a giant line is not read into
    memory whole, its head is passed on (to be rejected as too large) and the rest skipped."""
    while True:
        line = handle.readline(max_bytes + 1)
        if not line:
            return
        summary.lines += 1
        if len(line) > max_bytes and not line.endswith(b"\n"):
            while True:  # skip to the end of this line
                rest = handle.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
        yield line
