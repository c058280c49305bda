"""The status views and pages without a worker: the JSON against its schema, escaping of
what producers wrote, the history's bounds."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import numpy as np
import orjson
import pytest

from detectors.monitor import Monitor
from schemas import Prediction
from stream.history import History
from stream.pages import model_page, report_page, status_page
from stream.replay import replay
from stream.views import as_json, model_view, models_view
from tests import scenarios
from tests.core.test_golden import CONFIG, lines

SCHEMA = orjson.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "status.schema.json").read_bytes()
)
HOSTILE = "<img src=x onerror=alert(1)>\"'&"


def conforms(view: dict, name: str) -> None:
    """The view as the API sends it is a valid ``name`` of the schema."""
    instance = orjson.loads(as_json(view))
    jsonschema.validate(instance, {"$defs": SCHEMA["$defs"], "$ref": f"#/$defs/{name}"})


class Elements(HTMLParser):
    """Every start tag of a document, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.rows: list[tuple[str, str]] = []  # (tag, data-model) of the overview's rows

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        model = dict(attrs).get("data-model")
        if tag == "tr" and model is not None:
            self.rows.append((tag, model))

    def handle_data(self, data):
        self.text.append(data)


def parsed(html: str) -> Elements:
    elements = Elements()
    elements.feed(html)
    return elements


@pytest.fixture(scope="module")
def replayed():
    """Several scenarios replayed with a history, as ``replay --report`` does."""
    monitor = Monitor(CONFIG)
    history = History(step_ms=1_000, points=200, stretch=True)
    records = scenarios.covariate_shift() + scenarios.rollout() + scenarios.estimated_drop()
    records += scenarios.regression() + scenarios.estimated_mae_rise()
    for _ in replay(lines(records), monitor=monitor, history=history):
        pass
    return monitor, history


def test_the_views_are_what_the_schema_says(replayed):
    monitor, history = replayed
    overview = models_view(monitor, history)
    conforms(overview, "overview")
    assert {m["model_id"] for m in overview["models"]} == set(monitor.models)
    for model_id in monitor.models:
        view = model_view(monitor, history, model_id)
        conforms(view, "model")
        assert len(view["times"]) == len(view["series"]["metric"])
        assert all(len(f["ratio"]) in (0, len(view["times"])) for f in view["features"])
    assert model_view(monitor, history, "nobody") is None
    # Estimates before labels: F1 of a classifier (CBPE), MAE of a regression model (DLE).
    rows = {m["model_id"]: m for m in overview["models"]}
    assert (rows["m-estimate"]["metric"], rows["m-dle"]["metric"]) == ("f1", "mae")
    for model_id in ("m-estimate", "m-dle"):
        assert rows[model_id]["estimated"] is not None
        assert np.isfinite(rows[model_id]["series"]["estimated_metric"]).any()
    rollout = model_view(monitor, history, "m-rollout")
    assert [e["type"] for e in rollout["timeline"] if e["kind"] == "command"] == ["rollback"]
    assert models_view(monitor, history)["models"][0]["state"] in {
        "rolling back",
        "stalled",
        "degraded",
        "drifting",
        "healthy",
    }


def test_a_report_stretches_its_step_to_cover_the_whole_replay(replayed):
    monitor, history = replayed
    times = model_view(monitor, history, "m-shift")["times"]
    assert history.step_ms > 1_000  # (the scenarios span more than 200 s)
    assert len(times) <= history.points
    first_event = scenarios.T0
    assert times[0] <= first_event + 2 * history.step_ms  # the start is still there


def test_what_producers_wrote_is_text_on_every_page():
    monitor = Monitor()
    history = History(step_ms=1_000, points=50)
    rng = np.random.default_rng(1)
    for start in range(0, 3000, 100):
        events = [
            Prediction(
                model_id="m",
                model_version="1",
                prediction_id=f"p{i}",
                timestamp=1_000 * i,
                prediction=0.5,
                features={HOSTILE: float(rng.normal()) + (3.0 if i > 2000 else 0.0)},
            )
            for i in range(start, start + 100)
        ]
        history.record(monitor.process(events))
        history.sample(monitor, 1_000 * (start + 99))
    assert any(e.feature == HOSTILE for e in history.models["m"].timeline)  # it drifted
    overview = models_view(monitor, history)
    view = model_view(monitor, history, "m")
    assert view["features"][0]["name"] == HOSTILE
    for html in (
        status_page(overview),
        model_page(view),
        report_page(overview, [view], title=HOSTILE),
    ):
        elements = parsed(html)
        assert "img" not in elements.tags
        assert HOSTILE in "".join(elements.text)  # shown, as text
        assert "<script" not in html.lower()


def test_the_history_is_bounded():
    """However long it runs and however many features a model sends, a model's series hold
    ``points`` points and at most ``max_features`` features; 1,000 models of 10 features at
    the defaults hold 52 MB."""
    history = History(step_ms=1_000, points=30, max_features=3)
    monitor = Monitor()
    for i in range(200):
        features = {f"f{k}": float((i * k) % 11) for k in range(6)}
        event = Prediction(
            model_id="m",
            model_version="1",
            prediction_id=f"p{i}",
            timestamp=1_000 * i,
            prediction=0.5,
            features=features,
        )
        monitor.process([event])
        history.sample(monitor, 1_000 * i)
    model = history.models["m"]
    assert len(model.series("metric", history.order())) == 30
    assert len(model.features) <= 3
    full = History()
    row = full._model("x")
    for k in range(10):
        row.features[f"f{k}"] = np.full(full.points, np.nan, dtype=np.float16)
    assert row.nbytes() == 1_440 * (16 + 2 * 10)  # 52 kB: 52 MB at 1,000 models


def test_a_model_is_rolling_back_while_the_version_it_leaves_still_serves():
    """The rollout scenario's rollback is not acted on: version 2 keeps serving, the model is
    rolling back. Once only version 1 serves (the automation moved the traffic), it is not."""
    monitor, history = Monitor(CONFIG), History(step_ms=1_000, points=1_000)
    records = scenarios.rollout()
    for _ in replay(lines(records), monitor=monitor, history=history):
        pass
    model = history.models["m-rollout"]
    assert [e.type for e in model.timeline if e.kind == "command"] == ["rollback"]
    assert model.state == "rolling back"
    end = monitor.models["m-rollout"].versions["2"].last_seen
    after = [
        (
            "predictions",
            scenarios._prediction("m-rollout", "1", f"later-{i}", end + 1_000 * i, i % 2 == 0),
        )
        for i in range(1, 20)
    ]
    for _ in replay(lines(after), monitor=monitor, history=history):
        pass
    assert model.state != "rolling back"


def test_each_model_has_its_own_rate():
    """Two models, one sending three times as often: their events/s are theirs."""
    monitor, history = Monitor(), History(step_ms=1_000, points=100)
    for second in range(20):
        events = [
            Prediction(
                model_id=model,
                model_version="1",
                prediction_id=f"{model}-{second}-{k}",
                timestamp=1_000 * second + k,
                prediction=0.5,
            )
            for model, per_second in (("slow", 2), ("busy", 6))
            for k in range(per_second)
        ]
        monitor.process(events)
        history.sample(monitor, 1_000 * second + 999)
    rates = {
        m: history.models[m].series("events_per_second", history.order()).tolist()
        for m in ("slow", "busy")
    }
    assert rates["slow"][1:] == [2.0] * 19
    assert rates["busy"][1:] == [6.0] * 19


def test_the_page_lists_the_worst_states_first_and_links_to_the_rest():
    """30 models, three drifting, a page of 20 rows: the drifting ones first, and how many
    more there are; all of them with no limit (the page's default: 200 rows)."""
    monitor, history = Monitor(), History(step_ms=1_000, points=10)
    rng = np.random.default_rng(2)
    for start in range(0, 3_000, 500):
        events = [
            Prediction(
                model_id=f"m{k:02d}",
                model_version="1",
                prediction_id=f"{k}-{i}",
                timestamp=1_000 * i,
                prediction=0.5,
                features={"x": float(rng.normal()) + (3.0 if k % 10 == 7 and i > 2000 else 0.0)},
            )
            for i in range(start, start + 500)
            for k in range(30)
        ]
        history.record(monitor.process(events))
        history.sample(monitor, 1_000 * (start + 499))
    overview = models_view(monitor, history)
    drifting = sorted(m["model_id"] for m in overview["models"] if m["state"] == "drifting")
    assert drifting == ["m07", "m17", "m27"]
    page = parsed(status_page(overview, limit=20))
    rows = [model for _, model in page.rows]
    assert len(rows) == 20
    assert rows[:3] == drifting
    assert "10 more models" in "".join(page.text)
    assert len(parsed(status_page(overview, limit=None)).rows) == 30


def test_a_models_state_and_since_come_back_after_a_restart():
    """The series start again after a restart; the state, and since when, come from the
    restored model state (its alerts still firing)."""
    monitor, history = Monitor(CONFIG), History(step_ms=1_000, points=100)
    for _ in replay(lines(scenarios.covariate_shift()), monitor=monitor, history=history):
        pass
    before = history.models["m-shift"]
    assert before.state == "drifting"
    restarted = Monitor(CONFIG)
    restarted.load_model_state(
        "m-shift", orjson.loads(orjson.dumps(monitor.model_state("m-shift")))
    )
    fresh = History(step_ms=1_000, points=100)
    fresh.sample(restarted, history.now + 1_000)
    after = fresh.models["m-shift"]
    assert (after.state, after.state_since) == ("drifting", before.state_since)
    drift = [e for e in before.timeline if e.type == "data_drift"]
    assert before.state_since == drift[0].at  # the alert's own time
