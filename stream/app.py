"""The Faust app: driftline's live service.

::

    create_app(settings, config)
      topics       declared once (stream.topics), created at start if missing
      pipeline     the batched input agents (stream.pipeline): fetch -> core -> outputs
      timer        stall checks on the wall clock, every ``tick_interval`` seconds
      timer        free heap pages given back to the system (stream.process_memory), every
                   ``RELEASE_EVERY`` seconds
      web          /metrics (Prometheus text format), /healthz, and (DRIFTLINE_WEB_UI, on by
                   default) the status page /, /models/{id}, /api/models, /api/models/{id}

Faust's own Kafka consumer is switched off (``BootStrategy``): the pipeline consumes the
inputs in whole batches (see stream/pipeline.py for why).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import faust
import orjson
from aiohttp.web import StreamResponse
from faust.app.base import BootStrategy
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.web.drivers.aiohttp import Web as AiohttpWeb
from prometheus_client import generate_latest

from detectors.config import MonitorConfig
from detectors.monitor import Monitor
from stream.history import History
from stream.kafka_broker import cache_dir
from stream.metrics import CONTENT_TYPE, DriftlineMetrics, new_registry
from stream.pages import PAGE_ROWS, model_page, not_found_page, status_page
from stream.pipeline import InputPipeline
from stream.process_memory import release_free_memory
from stream.settings import Settings
from stream.topics import declare_topics
from stream.views import as_json, model_view, models_view

__all__ = ["DriftlineApp", "create_app"]

logger = logging.getLogger("driftline")

#: Seconds between two reloads of an open status page.
PAGE_REFRESH = 10
#: Seconds between two releases of free heap pages (stream.process_memory).
RELEASE_EVERY = 30.0
JSON = "application/json"


class _Boot(BootStrategy):
    # The input path is driftline's batched consumer; Faust's consumer would only join an
    # idle consumer group.
    enable_kafka_consumer = False


class _Web(AiohttpWeb):
    # Serve driftline's pages only: no Faust index, router, table, graph or stats views.
    default_blueprints = ()
    production_blueprints = ()
    debug_blueprints = ()
    optional_blueprints = ()


class DriftlineApp(faust.App):
    BootStrategy = _Boot

    def _new_web(self) -> Any:
        return _Web(self)

    pipeline: InputPipeline
    #: The monitoring core (``app.monitor`` is Faust's own stats sensor).
    core: Monitor


def _credentials(settings: Settings) -> Any:
    security = settings.security
    kwargs = security.client_kwargs()
    if security.protocol == "PLAINTEXT":
        return None
    if security.protocol == "SSL":
        return faust.SSLCredentials(kwargs["ssl_context"])
    return faust.SASLCredentials(
        username=security.sasl_username,
        password=security.sasl_password,
        mechanism=security.sasl_mechanism,
        ssl_context=kwargs.get("ssl_context"),
    )


def create_app(settings: Settings, config: MonitorConfig | None = None) -> DriftlineApp:
    """Build the worker's Faust app from settings and the per-model configuration."""
    data_dir = Path(settings.data_dir or cache_dir() / "worker")
    data_dir.mkdir(parents=True, exist_ok=True)
    app = DriftlineApp(
        settings.app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",")],
        broker_credentials=_credentials(settings),
        store="memory://",
        autodiscover=False,
        datadir=str(data_dir / "{conf.name}-data"),
        web_enabled=True,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_host=settings.web_host,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        producer_acks=-1,
        producer_max_request_size=33_554_432,
        producer_linger_ms=2,
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
    )
    monitor = Monitor(
        config,
        source=settings.source,
        max_models=settings.max_models,
        max_features_per_model=settings.max_features_per_model,
        max_pending_total=settings.max_pending_predictions,
    )
    topics = declare_topics(app, settings)

    async def declare() -> None:
        for topic in topics.all():
            await topic.maybe_declare()

    history = (
        History(step_ms=int(settings.history_step * 1000), points=settings.history_points)
        if settings.web_ui
        else None
    )
    pipeline = InputPipeline(
        producer=app.producer, settings=settings, monitor=monitor, declare=declare, history=history
    )
    app.core = monitor
    app.pipeline = pipeline
    app.service(pipeline)

    driftline_metrics = DriftlineMetrics(
        monitor,
        pipeline.stats,
        topic_of_kind={
            "prediction": settings.topics.predictions,
            "input": settings.topics.inputs,
            "label": settings.topics.labels,
        },
        lag=pipeline.lag,
    )
    registry = new_registry()
    # Faust's own sensor, on driftline's registry: its web request counts and latencies are
    # cheap and real (nothing flows through Faust streams here, so its stream metrics stay 0).
    app.monitor = PrometheusMonitor(metrics=FaustMetrics.create(registry, "driftline_faust"))

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        # Written family by family (chunked): see DriftlineMetrics.families.
        started = time.perf_counter()
        response = StreamResponse(headers={"Content-Type": CONTENT_TYPE})
        await response.prepare(request)
        try:
            for text in driftline_metrics.families():
                await response.write(text.encode())
            await response.write(generate_latest(registry))
            await response.write_eof()
        except ConnectionError:  # the scraper left (its timeout): no error to log
            return response
        driftline_metrics.last_scrape_seconds = time.perf_counter() - started
        return response

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        health = pipeline.health()
        return web.json(health, status=200 if health["status"] == "ok" else 503)

    @app.timer(settings.tick_interval)
    async def stall_check() -> None:
        await pipeline.tick()

    @app.timer(RELEASE_EVERY)
    async def release_memory() -> None:
        # ~20 ms at 1,000 models; the pages freed among the fleet's arrays leave the RSS.
        release_free_memory()

    if history is not None:
        add_status_pages(app, monitor, history)

    return app


def add_status_pages(app: faust.App, monitor: Monitor, history: History) -> None:
    """The status page, a page per model and their JSON (read-only: GET only), and the timer
    that samples the history (a few times per step, on the wall clock)."""

    @app.page("/")
    async def status(web: Any, request: Any) -> Any:
        # (?all=1: every row; by default the worst states' first PAGE_ROWS)
        limit = None if request.query.get("all") == "1" else PAGE_ROWS
        page = status_page(models_view(monitor, history), refresh=PAGE_REFRESH, limit=limit)
        return web.html(page)

    @app.page("/models/{model_id}")
    async def model(web: Any, request: Any, model_id: str) -> Any:
        view = model_view(monitor, history, model_id)
        if view is None:
            return web.html(not_found_page(model_id), status=404)
        return web.html(model_page(view, refresh=PAGE_REFRESH))

    @app.page("/api/models")
    async def api_models(web: Any, request: Any) -> Any:
        return web.bytes(as_json(models_view(monitor, history)), content_type=JSON)

    @app.page("/api/models/{model_id}")
    async def api_model(web: Any, request: Any, model_id: str) -> Any:
        view = model_view(monitor, history, model_id)
        if view is None:
            body = orjson.dumps({"error": "no such model", "model_id": model_id})
            return web.bytes(body, content_type=JSON, status=404)
        return web.bytes(as_json(view), content_type=JSON)

    @app.timer(min(10.0, history.step_ms / 2000))
    async def sample_history() -> None:
        history.sample(monitor, int(time.time() * 1000))
