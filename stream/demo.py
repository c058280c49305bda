"""``driftline demo``: a local broker, the worker, and a simulated fleet with scripted incidents.

In about a minute a newcomer sees, live, what driftline does:

=======  ===================  ====================================================  ============
demo s   model                incident                                              expected
=======  ===================  ====================================================  ============
15, 40   (any)                malformed events                                      dead letters
20       ``fraud-detector``   concept drift: error rate 5 % -> 35 %                 retrain
20       ``churn-predictor``  version 2 rolls out, with 4x the errors               rollback
22       ``recommender``      covariate shift: ``basket_value`` +2 sd              data drift
25       ``ranker``           version 2 rolls out, twice as slow (p99 latency)      latency alert,
                                                                                    rollback
25       ``credit-risk``      errs 45 % for ``region=islands`` (a tenth of its      segment alert
                          traffic; 5 % elsewhere)
25       ``loan-default``     its applicants crowd the decision boundary (F1        estimated F1
                          0.77 -> 0.58); labels come 12 s late                  alert, before
                                                                                    the labels
30-45    ``pricing``          goes silent, then resumes                             stall, then
                                                                                    resolved
-        ``search-ranking``   nothing: the control model                            nothing
=======  ===================  ====================================================  ============

Everything is real: a Kafka broker (the project's own, unless ``DRIFTLINE_BOOTSTRAP_SERVERS``
names one), ``driftline worker`` as a separate process, events produced to Kafka; the live view
reads the worker's ``/metrics`` and the alert and command topics. The demo plays the automation
too: on a rollback command it switches ``churn-predictor`` (or ``ranker``) back to version 1.
With ``--mlflow`` (needs ``pip install mlflow``) a local MLflow registry holds those two models
and ``driftline act`` moves their ``champion`` alias back to version 1 on each rollback command
(stream/demo_mlflow.py).
Every prediction carries its serving latency (``latency_ms``); the view shows each model's p99,
and its F1 estimated from its scores before labels (``est F1``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import os
import random
import shutil
import signal
import sys
import time
import uuid
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas import Topics
from stream.harness import Scrape, WorkerProcess, create_topics, free_port, prefixed_topics
from stream.kafka_broker import BrokerConfig, LocalKafka, cache_dir

__all__ = ["run_demo"]

SCRIPT_SECONDS = 50  # the last scripted incident ends at 45 s
RATE = 80  # events per second per model, at speed 1
LABEL_DELAY = 2.0  # seconds (demo time) before a prediction's label arrives

DEMO_CONFIG = """\
# The demo's thresholds: defaults, except a short fixed stall timeout so a silent model is
# noticed within the demo's minute (production learns it from the traffic: at least 60 s).
# Wall-clock durations are divided by --speed, as the script is.
defaults:
  stall_inputs: {{timeout: {stall}ms}}
  alerts: {{resolve_after: {resolve}ms, cooldown: {cooldown}ms}}
models:
  pricing:
    task: regression
  ranker:
    # A slower version is rolled back too; windows sized for the demo's minute (80 events/s).
    rollback: {{reasons: [errors, latency]}}
    latency: {{reference_size: 400, window: 400}}
  credit-risk:
    # Its traffic split by two request tags; windows sized for the demo's minute.
    segments: [region, channel]
    segmentation: {{window: 1000, check_every: 100, min_outcomes: 60}}
  loan-default:
    # Labels come late: its F1 is estimated from its scores meanwhile (sized for the demo).
    estimation: {{reference_size: 400, window: 400, check_every: 50}}
"""
#: Seconds (demo time) before a loan-default prediction's label arrives.
LOAN_LABEL_DELAY = 12.0
REGIONS = ["north", "south", "east", "islands"]


# -- the fleet ------------------------------------------------------------------------------


@dataclass
class SimModel:
    name: str
    version: str = "1"
    error: float = 0.05
    labelled: float = 1.0  # share of predictions that get a label
    silent: bool = False
    slowdown: float = 1.0  # serving latency multiplier
    failing_region: str | None = None  # credit-risk: the region it errs for
    crowded: bool = False  # loan-default: its inputs crowd the decision boundary
    label_delay: float = LABEL_DELAY
    sent: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def prediction(self, i: int, now_ms: int, demo_s: float) -> tuple[bytes, Any, Any]:
        """(event, truth) of one prediction."""
        r = self.rng
        pid = f"{self.name}-{self.version}-{i}"
        tags: dict[str, str] | None = None
        if self.name == "loan-default":
            # P(default | x) = sigmoid(3x - 1.5); the score is that probability (calibrated).
            x = r.gauss(0.5, 0.15) if self.crowded else r.gauss(0.0, 1.0)
            probability = 1.0 / (1.0 + math.exp(-(3.0 * x - 1.5)))
            truth = r.random() < probability
            prediction = probability > 0.5
            features = {"debt_to_income": round(0.35 + 0.1 * x + r.gauss(0, 0.02), 4)}
            score = round(probability, 4)
        elif self.name == "pricing":
            demand = r.gauss(100, 15)
            truth = 2.0 * demand + r.gauss(0, 5)
            prediction = round(truth + r.gauss(0, 8), 2)
            features: dict[str, Any] = {"demand": demand, "competitor_price": r.gauss(50, 3)}
            score = None
        elif self.name == "recommender":
            shift = 2.0 if demo_s >= 22 else 0.0
            basket = r.gauss(60, 12) + shift * 12
            truth = r.choices(["electronics", "books", "fashion"], weights=[3, 2, 5])[0]
            prediction = truth if r.random() > 0.2 else r.choice(["electronics", "books"])
            features = {
                "basket_value": basket,
                "session_minutes": r.expovariate(1 / 8),
                "device": r.choices(["mobile", "desktop", "tablet"], weights=[6, 3, 1])[0],
            }
            score = {"electronics": 0.3, "books": 0.2, "fashion": 0.5}
        else:
            truth = r.random() < 0.3
            error = self.error
            if self.name == "credit-risk":
                region = r.choices(REGIONS, weights=[4, 3, 2, 1])[0]
                tags = {"region": region, "channel": r.choice(["branch", "app"])}
                if region == self.failing_region:
                    error = 0.45
            wrong = r.random() < error
            prediction = (not truth) if wrong else truth
            features = {
                "amount": r.lognormvariate(3, 1),
                "account_age_days": float(r.randint(1, 2000)),
                "country": r.choices(["DE", "FR", "US", "BR"], weights=[4, 3, 2, 1])[0],
            }
            score = round(min(1.0, max(0.0, (0.8 if prediction else 0.2) + r.gauss(0, 0.1))), 4)
        event = {
            "model_id": self.name,
            "model_version": self.version,
            "prediction_id": pid,
            "timestamp": now_ms,
            "prediction": prediction,
            "features": features,
        }
        if score is not None:
            event["score"] = score
        if tags is not None:
            event["tags"] = tags
        event["latency_ms"] = round(r.lognormvariate(3.0, 0.4) * self.slowdown, 3)
        return orjson.dumps(event), pid, truth


MALFORMED = [
    b"not json",
    b'{"model_id": "fraud-detector"}',
    b'{"model_id": "fraud detector", "model_version": "1", "prediction_id": "x", '
    b'"timestamp": 1795255200000, "prediction": true}',
    b'{"model_id": "fraud-detector", "model_version": "1", "prediction_id": "x", '
    b'"timestamp": 1795255200, "prediction": true}',
    b'{"model_id": "pricing", "model_version": "1", "prediction_id": "x", '
    b'"timestamp": 1795255200000, "prediction": NaN}',
]


@dataclass
class Incident:
    name: str
    model: str
    starts_at: float  # demo seconds
    caught_at: float | None = None  # demo seconds
    caught_by: str | None = None  # the alert or command that caught it
    ends_at: float | None = None  # for an incident that must also resolve
    resolved_at: float | None = None

    @property
    def caught(self) -> bool:
        return self.caught_at is not None

    @property
    def complete(self) -> bool:
        return self.caught and (self.ends_at is None or self.resolved_at is not None)


@dataclass
class DemoState:
    speed: float
    duration: float
    started: float = field(default_factory=time.monotonic)
    sent: Counter[str] = field(default_factory=Counter)
    rates: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)
    feed: deque[str] = field(default_factory=lambda: deque(maxlen=12))
    incidents: list[Incident] = field(default_factory=list)
    malformed_sent: int = 0
    fed: int = 0  # lines ever added to ``feed``
    finished: bool = False  # the fleet stopped sending
    metrics: dict[str, Any] = field(default_factory=dict)
    false_alarms: list[str] = field(default_factory=list)
    #: Caught incidents whose alert or command the status page's timeline of their model shows.
    on_page: list[str] | None = None
    #: With --mlflow: model -> (demo seconds, version) when driftline act moved its alias.
    acted: dict[str, tuple[float, str]] | None = None

    def demo_seconds(self) -> float:
        return (time.monotonic() - self.started) * self.speed

    def incident(self, name: str) -> Incident:
        return next(i for i in self.incidents if i.name == name)


# -- infrastructure -------------------------------------------------------------------------


def _scrape(worker: WorkerProcess) -> str:
    try:
        return worker.metrics()
    except (OSError, RuntimeError):
        return ""


def _parse_metrics(text: str) -> dict[str, Any]:
    """The few figures the live view shows, per model."""
    out: dict[str, Any] = {
        "drift": {},
        "f1": {},
        "silence": {},
        "deadletters": 0.0,
        "mae": {},
        "p99": {},
        "estimated_f1": {},
    }
    if not text:
        return out
    scrape = Scrape(text)
    for labels, value in scrape.of("driftline_drift_detected"):
        model = labels.get("model_id")
        if value == 1.0 and model:
            out["drift"].setdefault(model, []).append(labels.get("feature") or labels["signal"])
    for name, key in (
        ("driftline_model_f1", "f1"),
        ("driftline_model_mae", "mae"),
        ("driftline_model_estimated_f1", "estimated_f1"),
    ):
        for labels, value in scrape.of(name):
            if labels.get("model_id"):
                out[key][(labels["model_id"], labels.get("model_version"))] = value
    for labels, value in scrape.of("driftline_model_latency_seconds"):
        if labels.get("model_id") and labels.get("quantile") == "0.99":
            out["p99"][(labels["model_id"], labels.get("model_version"))] = value * 1000
    for labels, value in scrape.of("driftline_seconds_since_last_event"):
        model = labels.get("model_id")
        if model:
            out["silence"][model] = min(out["silence"].get(model, math.inf), value)
    out["deadletters"] = scrape.total("driftline_deadletter_total")
    return out


# -- the demo -------------------------------------------------------------------------------


async def _fleet(
    state: DemoState,
    producer: AIOKafkaProducer,
    topics: Topics,
    models: dict[str, SimModel],
) -> None:
    labels: list[tuple[float, int, str, bytes]] = []  # a heap: (due, order, model, label)
    next_index: Counter[str] = Counter()
    owed: Counter[str] = Counter()  # fractional events carried to the next round
    tick = 0.05
    last = time.monotonic()
    malformed_at = {15.0: False, 40.0: False}
    rolled_out = slow_rolled_out = False
    while state.demo_seconds() < state.duration:
        demo_s = state.demo_seconds()
        now_ms = int(time.time() * 1000)
        # the script
        models["fraud-detector"].error = 0.35 if demo_s >= 20 else 0.05
        churn = models["churn-predictor"]
        if demo_s >= 20 and not rolled_out:
            rolled_out = True
            churn.version, churn.error = "2", 0.4  # until the rollback command brings 1 back
        ranker = models["ranker"]
        if demo_s >= 25 and not slow_rolled_out:
            slow_rolled_out = True
            ranker.version, ranker.slowdown = "2", 2.0  # until the rollback command
        models["credit-risk"].failing_region = "islands" if demo_s >= 25 else None
        models["loan-default"].crowded = demo_s >= 25
        models["pricing"].silent = 30 <= demo_s < 45
        for at, done in list(malformed_at.items()):
            if demo_s >= at and not done:
                for payload in MALFORMED:
                    await producer.send(topics.predictions, payload, key=b"demo")
                    state.malformed_sent += 1
                malformed_at[at] = True
        # the traffic: RATE events per demo second, whatever the loop's own pace
        elapsed, last = time.monotonic() - last, time.monotonic()
        for model in models.values():
            if model.silent:
                continue
            owed[model.name] += RATE * state.speed * elapsed
            count = int(owed[model.name])
            owed[model.name] -= count
            for _ in range(count):
                next_index[model.name] += 1
                value, pid, truth = model.prediction(next_index[model.name], now_ms, demo_s)
                await producer.send(topics.predictions, value, key=model.name.encode())
                model.sent += 1
                state.sent[model.name] += 1
                if model.rng.random() < model.labelled:
                    label = orjson.dumps(
                        {
                            "model_id": model.name,
                            "prediction_id": pid,
                            # stamped when it becomes known: when it is sent
                            "timestamp": now_ms + int(model.label_delay * 1000 / state.speed),
                            "label": truth,
                        }
                    )
                    due = demo_s + model.label_delay
                    heapq.heappush(labels, (due, model.sent, model.name, label))
        while labels and labels[0][0] <= demo_s:
            _, _, name, label = heapq.heappop(labels)
            await producer.send(topics.labels, label, key=name.encode())
        await asyncio.sleep(tick)


async def _watch_outputs(
    state: DemoState, bootstrap: str, topics: Topics, models: dict[str, SimModel]
) -> None:
    consumer = AIOKafkaConsumer(
        topics.alerts,
        topics.commands,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    _observe(state, orjson.loads(record.value), models)
    finally:
        await consumer.stop()


def _observe(state: DemoState, event: dict[str, Any], models: dict[str, SimModel]) -> None:
    at = state.demo_seconds()
    kind = event["type"].rsplit(".", 1)[-1]
    data = event["data"]
    model = event["subject"]
    stamp = f"{int(at) // 60:02d}:{int(at) % 60:02d}"
    if event["type"].startswith("io.driftline.command."):
        if kind == "rollback":
            line = (
                f"{stamp}  COMMAND rollback  {model}: {data['from_version']} -> "
                f"{data['to_version']}  ({data['evidence']['detector']}, "
                f"{data['evidence']['statistic']:.3g} vs {data['evidence']['threshold']:.3g})"
            )
            if model == "churn-predictor":
                incident = state.incident("bad rollout")
                if not incident.caught:
                    incident.caught_at = at
                    incident.caught_by = kind
                    # the automation acts on it: version 1 serves again
                    models[model].version, models[model].error = data["to_version"], 0.05
            elif model == "ranker" and data["reason"] == "slower_than_previous_version":
                incident = state.incident("slow rollout")
                if not incident.caught:
                    incident.caught_at = at
                    incident.caught_by = kind
                    models[model].version, models[model].slowdown = data["to_version"], 1.0
        else:
            line = (
                f"{stamp}  COMMAND retrain   {model} v{data['model_version']}: "
                f"{data['reason']}, new data from {data['window']['start'][11:19]}"
            )
            incident = state.incident("concept drift")
            if model == "fraud-detector" and not incident.caught:
                incident.caught_at = at
                incident.caught_by = kind
    else:
        what = data.get("feature") or data["signal"]
        segment = data.get("segment")
        if segment:
            what += " " + ",".join(f"{k}={v}" for k, v in segment.items())
        line = (
            f"{stamp}  ALERT   {data['status']:<8} {kind:<23} {model}: {what} "
            f"({data['statistic']:.3g} vs {data['threshold']:.3g})"
        )
        if kind == "data_drift" and model == "recommender" and data["feature"] == "basket_value":
            incident = state.incident("covariate shift")
            if data["status"] == "firing" and not incident.caught:
                incident.caught_at = at
                incident.caught_by = kind
        elif kind == "estimated_performance_degradation" and model == "loan-default":
            incident = state.incident("estimated drop")
            # Caught only when it comes before the first label of the shifted applicants.
            before_labels = at < incident.starts_at + LOAN_LABEL_DELAY
            if data["status"] == "firing" and before_labels and not incident.caught:
                incident.caught_at = at
                incident.caught_by = kind
        elif kind == "segment_degradation" and model == "credit-risk":
            incident = state.incident("failing segment")
            if (
                data["status"] == "firing"
                and segment == {"region": "islands"}
                and not incident.caught
            ):
                incident.caught_at = at
                incident.caught_by = kind
        elif kind == "input_stall" and model == "pricing":
            incident = state.incident("model goes silent")
            if data["status"] == "firing" and not incident.caught:
                incident.caught_at = at
                incident.caught_by = kind
            elif data["status"] == "resolved" and incident.caught:
                incident.resolved_at = at
        # After the fleet stopped every model goes silent for real: not a false alarm.
        if model == "search-ranking" and data["status"] == "firing" and not state.finished:
            state.false_alarms.append(f"{kind} {what}")
    state.feed.append(line)
    state.fed += 1


def _render(state: DemoState, metrics_url: str, broker: str, serving: dict[str, str]) -> str:
    at = min(state.demo_seconds(), state.duration)
    width = 30
    done = int(width * at / state.duration)
    bar = "#" * done + "." * (width - done)
    m = state.metrics
    rows = [
        f"driftline demo  {int(at):3d}s / {int(state.duration)}s  [{bar}]  x{state.speed:g}",
        f"broker {broker}   metrics {metrics_url}",
        "",
        f"{'model':<17}{'events/s':>9}  {'drift':<22}{'F1 / MAE':>12}{'est F1':>8}"
        f"{'p99 ms':>8}  {'stall':<8}",
    ]
    now = time.monotonic()
    for model, sent in sorted(state.sent.items()):
        history = state.rates.setdefault(model, deque(maxlen=10))
        history.append((now, sent))
        (t0, s0), (t1, s1) = history[0], history[-1]
        rate = (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0
        drift = ", ".join(m.get("drift", {}).get(model, [])) or "-"
        version = serving.get(model)
        f1 = m.get("f1", {}).get((model, version))
        mae = m.get("mae", {}).get((model, version))
        quality = f"{f1:.2f}" if f1 is not None else (f"{mae:.1f}" if mae is not None else "-")
        drift = f"v{version} {drift}" if version and version != "1" else drift
        p99 = m.get("p99", {}).get((model, version))
        latency = f"{p99:.0f}" if p99 is not None else "-"
        estimated = m.get("estimated_f1", {}).get((model, version))
        estimate = f"{estimated:.2f}" if estimated is not None else "-"
        silence = m.get("silence", {}).get(model)
        stall = "SILENT" if silence is not None and silence > 5 else "ok"
        rows.append(
            f"{model:<17}{rate:9.0f}  {drift[:22]:<22}{quality:>12}{estimate:>8}{latency:>8}"
            f"  {stall:<8}"
        )
    rows += ["", "alerts and commands:"]
    rows += [f"  {line}" for line in state.feed] or ["  (none yet)"]
    rows += ["", "incidents:"]
    for incident in state.incidents:
        mark = "x" if incident.complete else ("." if at < incident.starts_at else " ")
        rows.append(
            f"  [{mark}] {incident.name:<20} {incident.model:<17} from {incident.starts_at:.0f}s"
        )
    rows.append(
        f"  dead letters: {int(m.get('deadletters', 0))} of {state.malformed_sent} malformed events"
    )
    return "\n".join(rows)


async def _view(
    state: DemoState, worker: WorkerProcess, broker: str, models: dict[str, SimModel]
) -> None:
    """Redraw the screen twice a second on a terminal; otherwise (a log, CI) print each alert
    and command as it arrives and a progress line every 10 seconds."""
    tty = sys.stdout.isatty()
    last_plain, printed = 0.0, 0
    while True:
        state.metrics = _parse_metrics(await asyncio.to_thread(_scrape, worker))
        serving = {name: model.version for name, model in models.items()}
        if tty:
            page = _render(state, f"{worker.url}/metrics", broker, serving)
            print("\x1b[H\x1b[2J" + page, flush=True)
        else:
            fresh = list(state.feed)[-(state.fed - printed) :] if state.fed > printed else []
            for line in fresh:
                print(line, flush=True)
            printed = state.fed
            if time.monotonic() - last_plain >= 10:
                last_plain = time.monotonic()
                at = min(state.demo_seconds(), state.duration)
                done = sum(i.complete for i in state.incidents)
                print(
                    f"-- {at:4.0f}s / {state.duration:.0f}s, "
                    f"{sum(state.sent.values()):,} predictions sent, "
                    f"{done}/{len(state.incidents)} incidents caught",
                    flush=True,
                )
        await asyncio.sleep(0.5)


def _on_status_page(state: DemoState, worker: WorkerProcess) -> list[str] | None:
    """The caught incidents whose alert or command is on their model's timeline in the
    worker's status API (None when the page does not answer)."""
    shown = []
    for incident in state.incidents:
        if not incident.caught:
            continue
        try:
            view = worker.get_json(f"/api/models/{incident.model}")
        except (OSError, ValueError):
            return None
        if any(entry["type"] == incident.caught_by for entry in view["timeline"]):
            shown.append(incident.name)
    return shown


def _summary(state: DemoState) -> tuple[str, bool]:
    lines = ["", "driftline demo: summary", ""]
    all_caught = True
    for incident in state.incidents:
        if incident.complete and incident.caught_at is not None:
            delay = incident.caught_at - incident.starts_at
            text = f"{delay:5.1f} s after it began"
            if incident.resolved_at is not None and incident.ends_at is not None:
                text += f", resolved {incident.resolved_at - incident.ends_at:.1f} s after it ended"
            lines.append(f"  CAUGHT  {incident.name:<20} {incident.model:<17} {text}")
        elif incident.starts_at > state.duration:
            lines.append(
                f"  -       {incident.name:<20} {incident.model:<17} not reached "
                "(--duration too short)"
            )
            all_caught = False
        else:
            missing = "not resolved" if incident.caught else ""
            lines.append(f"  MISSED  {incident.name:<20} {incident.model:<17} {missing}")
            all_caught = False
    dead = int(state.metrics.get("deadletters", 0))
    ok = dead == state.malformed_sent and state.malformed_sent > 0
    all_caught &= ok
    lines.append(
        f"  {'CAUGHT' if ok else 'MISSED'}  {'malformed events':<20} {'(any)':<17} "
        f"{dead} of {state.malformed_sent} dead-lettered with a reason"
    )
    caught = [i.name for i in state.incidents if i.caught]
    shown = state.on_page or []
    page_ok = state.on_page is not None and set(shown) == set(caught)
    all_caught &= page_ok
    lines.append(
        f"  {'SHOWN' if page_ok else 'MISSED'}   {'on the status page':<20} {'(every model)':<17} "
        f"{len(shown)} of {len(caught)} caught incidents on their model's timeline"
    )
    if state.acted is not None:
        from stream.demo_mlflow import ALIAS, MODELS

        for model in MODELS:
            acted = state.acted.get(model)
            if acted is not None and acted[1] == "1":
                text = f"MLflow alias {ALIAS} -> version 1 by driftline act at {acted[0]:.1f} s"
                lines.append(f"  ACTED   {'rollback':<20} {model:<17} {text}")
            else:
                lines.append(f"  MISSED  {'rollback':<20} {model:<17} MLflow alias not moved")
                all_caught = False
    lines.append("  (times are demo seconds: --speed 2 halves them on the clock)")
    lines.append(
        f"  control model search-ranking: "
        f"{'no false alarm' if not state.false_alarms else state.false_alarms}"
    )
    lines.append(
        f"  events sent: {sum(state.sent.values()):,} predictions across {len(state.sent)} models"
    )
    return "\n".join(lines), all_caught and not state.false_alarms


async def _run(duration: float, speed: float, mlflow: bool = False) -> int:
    external = os.environ.get("DRIFTLINE_BOOTSTRAP_SERVERS")
    broker: LocalKafka | None = None
    worker: WorkerProcess | None = None
    registry: Any = None
    workdir = cache_dir() / "demo"
    run_id = uuid.uuid4().hex[:6]
    state = DemoState(speed=speed, duration=duration)
    state.incidents = [
        Incident("concept drift", "fraud-detector", 20),
        Incident("bad rollout", "churn-predictor", 20),
        Incident("covariate shift", "recommender", 22),
        Incident("slow rollout", "ranker", 25),
        Incident("failing segment", "credit-risk", 25),
        Incident("estimated drop", "loan-default", 25),
        Incident("model goes silent", "pricing", 30, ends_at=45),
    ]
    tasks: list[asyncio.Task[Any]] = []
    producer: AIOKafkaProducer | None = None
    try:
        if external:
            bootstrap = external
            print(f"driftline demo: using the broker at {bootstrap}", flush=True)
        else:
            shutil.rmtree(workdir / "kafka", ignore_errors=True)
            port = free_port(19092)
            broker = LocalKafka(
                BrokerConfig(
                    port=port, controller_port=free_port(port + 1), data_dir=workdir / "kafka"
                )
            )
            print(
                f"driftline demo: starting a local Kafka broker on 127.0.0.1:{port} ...", flush=True
            )
            seconds = await asyncio.to_thread(broker.start)
            bootstrap = broker.bootstrap_servers
            print(f"driftline demo: broker ready in {seconds:.1f}s", flush=True)
        topics = prefixed_topics(f"demo-{run_id}")
        await create_topics(bootstrap, topics.all())
        workdir.mkdir(parents=True, exist_ok=True)
        # Its own session: Ctrl-C reaches the demo only, which stops the worker in order.
        worker = WorkerProcess(
            bootstrap,
            topics,
            workdir,
            app_id=f"driftline-demo-{run_id}",
            config=DEMO_CONFIG.format(
                stall=int(5000 / speed), resolve=int(2000 / speed), cooldown=int(30_000 / speed)
            ),
            env={
                "DRIFTLINE_TICK_INTERVAL": str(max(0.1, 0.5 / speed)),
                "DRIFTLINE_CHECKPOINT_INTERVAL": "5",
                # The status page's series: a point per demo second.
                "DRIFTLINE_HISTORY_STEP": str(max(0.25, 1.0 / speed)),
            },
            log_level="warn",
            port=free_port(6066),
            new_session=True,
        )
        worker.launch()
        metrics_url = f"{worker.url}/metrics"
        print("driftline demo: starting the worker ...", flush=True)
        try:
            await asyncio.to_thread(worker.wait_for, worker.serving, 90, "the worker to start")
        except (RuntimeError, TimeoutError) as error:
            print(str(error)[-3000:], file=sys.stderr)
            print("driftline demo: the worker did not start", file=sys.stderr)
            return 1
        print(
            f"driftline demo: worker ready; status page at {worker.url}/ , "
            f"metrics at {metrics_url}",
            flush=True,
        )
        if mlflow:
            from stream.demo_mlflow import DemoRegistry

            registry = DemoRegistry(workdir, run_id)
            print("driftline demo: starting a local MLflow registry and driftline act ...")
            try:
                seconds = await asyncio.to_thread(registry.start, bootstrap, topics)
            except (RuntimeError, TimeoutError) as error:
                print(str(error)[-3000:], file=sys.stderr)
                print("driftline demo: MLflow or driftline act did not start", file=sys.stderr)
                return 1
            state.acted = {}
            print(
                f"driftline demo: MLflow registry at {registry.url} ready in {seconds:.1f}s; "
                "driftline act moves the champion alias of churn-predictor and ranker",
                flush=True,
            )
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await producer.start()
        models = {
            name: SimModel(name, rng=random.Random(zlib.crc32(name.encode())))  # noqa: S311
            for name in (
                "fraud-detector",
                "churn-predictor",
                "recommender",
                "pricing",
                "search-ranking",
                "ranker",
                "credit-risk",
                "loan-default",
            )
        }
        models["churn-predictor"].error = 0.1
        models["recommender"].labelled = 0.5
        models["loan-default"].label_delay = LOAN_LABEL_DELAY
        models["pricing"].labelled = 0.5
        state.started = time.monotonic()
        tasks = [
            asyncio.create_task(_watch_outputs(state, bootstrap, topics, models)),
            asyncio.create_task(_view(state, worker, bootstrap, models)),
        ]
        if registry is not None:
            tasks.append(asyncio.create_task(registry.watch(_alias_moved(state))))
        await _fleet(state, producer, topics, models)
        state.finished = True
        # let the last events be processed and the last alerts arrive
        await producer.flush()
        await asyncio.sleep(3)
        state.metrics = _parse_metrics(await asyncio.to_thread(_scrape, worker))
        state.on_page = await asyncio.to_thread(_on_status_page, state, worker)
        text, success = _summary(state)
        print(text, flush=True)
        if not mlflow:
            print(
                "driftline demo: to see these rollbacks carried out in an MLflow Model Registry "
                "by driftline act: driftline demo --mlflow (needs pip install mlflow)",
                flush=True,
            )
        return 0 if success else 1
    except asyncio.CancelledError:
        text, _ = _summary(state)
        print("\ndriftline demo: interrupted" + text, flush=True)
        return 130
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()
        if worker is not None and worker.alive():
            await asyncio.to_thread(worker.stop, signal.SIGTERM, 30)
        if registry is not None:
            await asyncio.to_thread(registry.stop)
        if broker is not None:
            print("driftline demo: stopping the local broker", flush=True)
            await asyncio.to_thread(broker.stop)


def _alias_moved(state: DemoState) -> Any:
    def moved(model: str, old: str | None, new: str) -> None:
        at = state.demo_seconds()
        assert state.acted is not None
        state.acted[model] = (at, new)
        stamp = f"{int(at) // 60:02d}:{int(at) % 60:02d}"
        state.feed.append(
            f"{stamp}  ACTED   rollback  {model}: MLflow alias champion {old} -> {new} "
            "(driftline act)"
        )
        state.fed += 1

    return moved


def run_demo(duration: float = 60.0, speed: float = 1.0, mlflow: bool = False) -> int:
    """Run the demo; 0 when every scripted incident was caught (and, with ``mlflow``, both
    rollbacks were carried out in the local MLflow registry by driftline act)."""
    if mlflow:
        from stream.demo_mlflow import INSTALL_HINT, server_installed

        if not server_installed():
            print(INSTALL_HINT, file=sys.stderr)
            return 2
    if duration < SCRIPT_SECONDS:
        print(
            f"driftline demo: --duration {duration:g} ends before the script "
            f"({SCRIPT_SECONDS} s): some incidents will not happen",
            file=sys.stderr,
        )
    try:
        return asyncio.run(_run(duration, speed, mlflow))
    except KeyboardInterrupt:
        return 130
