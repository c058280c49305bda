"""The status page of a live worker and the report of a replay, looked at in a real browser
(Debian's Chromium driven by Playwright), as a person would: one row per model, the drifting
one marked, its alert on its timeline, nothing a producer wrote run as markup, no script error.

``DRIFTLINE_SCREENSHOTS=DIR`` saves what the browser showed there (the README's pictures).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import asynccontextmanager
from pathlib import Path

import jsonschema
import orjson
import pytest
from playwright.async_api import Page, async_playwright

from tests import scenarios
from tests.core.test_golden import lines
from tests.integration.live import produce, recent_t0

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
#: A feature name a producer might send to see whether the page runs it.
HOSTILE = "<img src=x onerror=alert(1)>"
SCHEMA = orjson.loads((ROOT / "schemas" / "status.schema.json").read_bytes())


#: ``m-estimate``'s estimation settings (sized for a short scenario).
CONFIG = (
    "models:\n  m-estimate:\n    estimation: {reference_size: 400, window: 300, check_every: 50}\n"
)


def incident(t0: int) -> list[scenarios.Record]:
    """``m-shift`` drifts on ``f1``; ``m-steady`` does not; ``m-estimate``'s estimated F1
    falls before its labels come; ``m-hostile`` sends a feature named :data:`HOSTILE` (within
    the contract: any string is a feature name). In event-time order, as a log of the topics
    would be."""
    records = scenarios.covariate_shift(t0=t0)
    records += scenarios.estimated_drop(t0=t0 - 7_100_000)  # (its last labels at t0 + 400 s)
    records += scenarios.covariate_shift(model="m-steady", shift=0.0, t0=t0, seed=2)
    rng = random.Random(3)
    records += [
        (
            "predictions",
            scenarios._prediction(
                "m-hostile", "1", f"h{i}", t0 + i * 100, 0.5, {HOSTILE: rng.gauss(0.0, 1.0)}
            ),
        )
        for i in range(2000)
    ]
    return sorted(records, key=lambda r: orjson.loads(r[1])["timestamp"])


@asynccontextmanager
async def browser_page(problems: list[str]):
    """A page of a headless Chromium that collects console errors, script errors and dialogs
    (an injected ``alert(...)``) into ``problems``."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (bash deploy/local.sh test installs it)"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            page.on(
                "console",
                lambda m: (
                    problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
                ),
            )
            page.on("pageerror", lambda e: problems.append(f"script error: {e}"))

            async def dialog(d):
                problems.append(f"dialog: {d.message}")
                await d.dismiss()

            page.on("dialog", dialog)
            yield page
        finally:
            await browser.close()


async def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("DRIFTLINE_SCREENSHOTS")
    if folder:  # (Playwright makes the folder)
        await page.screenshot(path=os.path.join(folder, name), full_page=True)


async def check_overview(page: Page, models: set[str]) -> None:
    """One row per model; the drifting one says so; the others do not."""
    rows = page.locator("#models tbody tr")
    assert await rows.count() == len(models)
    shown = {await r.get_attribute("data-model") for r in await rows.all()}
    assert shown == models
    drifting = page.locator('#models tr[data-model="m-shift"]')
    assert await drifting.get_attribute("data-state") == "drifting"
    assert "drifting" in await drifting.locator("td").nth(1).inner_text()
    assert "data_drift: f1" in await drifting.inner_text()
    steady = page.locator('#models tr[data-model="m-steady"]')
    assert await steady.get_attribute("data-state") == "healthy"


async def check_hostile_text(page: Page) -> None:
    """The hostile feature name is on the page as text, never as an element."""
    assert await page.locator("img").count() == 0
    assert HOSTILE in await page.locator("body").inner_text()


async def test_a_live_workers_status_page_shows_the_incident(kafka_bootstrap, topics, workers):
    worker = workers(env={"DRIFTLINE_HISTORY_STEP": "1"}, config=CONFIG).start()
    records = incident(recent_t0())
    await produce(kafka_bootstrap, records, topics)
    worker.wait_for(
        lambda: worker.sample("driftline_alerts_total", type="io.driftline.alert.data_drift") >= 1,
        what="the data drift alert",
    )
    models = {"m-shift", "m-steady", "m-hostile", "m-estimate"}
    worker.wait_for(
        lambda: (
            {m["model_id"] for m in api(worker.url + "/api/models")["models"]} == models
            and all(
                m["state"] != "healthy"
                for m in api(worker.url + "/api/models")["models"]
                if m["model_id"] == "m-shift"
            )
        ),
        what="the history to sample every model",
    )
    # The JSON API is what its schema says.
    overview = api(worker.url + "/api/models")
    conforms(overview, "overview")
    detail = api(worker.url + "/api/models/m-shift")
    conforms(detail, "model")
    assert any(e["type"] == "data_drift" and e["feature"] == "f1" for e in detail["timeline"])
    assert status_of(worker.url + "/?all=1") == 200
    with pytest.raises(urllib.error.HTTPError) as missing:
        api(worker.url + "/api/models/no-such-model")
    assert missing.value.code == 404

    problems: list[str] = []
    async with browser_page(problems) as page:
        await page.goto(worker.url + "/")
        await check_overview(page, models)
        await check_hostile_text(page)
        await screenshot(page, "status-page.png")
        # The drifting model's page: its alert on the timeline, f1's chart flagged.
        await page.click('#models tr[data-model="m-shift"] a')
        await page.wait_for_url("**/models/m-shift")
        timeline = await page.locator("#timeline").inner_text()
        for expected in ("data_drift", "firing", "f1"):
            assert expected in timeline
        cards = page.locator("#features .card")
        titles = [await c.locator("h3").inner_text() for c in await cards.all()]
        assert any(t.startswith("f1:") and "(drift)" in t for t in titles), titles
        assert any(t.startswith("f2:") and "(drift)" not in t for t in titles), titles
        await screenshot(page, "model-page.png")
        await page.goto(worker.url + "/models/m-hostile")
        await check_hostile_text(page)
    assert problems == []


async def test_the_page_can_be_turned_off(kafka_bootstrap, topics, workers):
    worker = workers(env={"DRIFTLINE_WEB_UI": "0"}).start()
    assert status_of(worker.url + "/") == 404
    assert status_of(worker.url + "/api/models") == 404
    assert worker.serving()  # /metrics still answers


def test_a_replay_report_shows_the_backtest(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines(incident(scenarios.T0))) + b"\n")
    report = tmp_path / "report.html"
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "stream.cli",
            "replay",
            str(events),
            "--out",
            str(tmp_path / "o"),
            "--report",
            str(report),
            "--config",
            str(config),
        ],
        capture_output=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    html = report.read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html  # nothing fetched from anywhere
    import asyncio

    async def look() -> list[str]:
        problems: list[str] = []
        async with browser_page(problems) as page:
            await page.goto(report.as_uri())
            await check_overview(page, {"m-shift", "m-steady", "m-hostile", "m-estimate"})
            await check_hostile_text(page)
            # Every alert and command is marked on its model's charts.
            section = page.locator('section[id="model-m-shift"]')
            marks = section.locator("line.mark")
            assert await marks.count() >= 1
            titles = [await m.locator("title").text_content() for m in await marks.all()]
            assert any("data_drift" in t for t in titles), titles
            await screenshot(page, "replay-report.png")
        return problems

    assert asyncio.run(look()) == []


def conforms(instance: dict, name: str) -> None:
    """``instance`` is a valid ``name`` of schemas/status.schema.json."""
    jsonschema.validate(instance, {"$defs": SCHEMA["$defs"], "$ref": f"#/$defs/{name}"})


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def api(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        return orjson.loads(response.read())
