"""HTML of the status page, a model's page and the replay report, from the JSON of
:mod:`stream.views`: self-contained documents (inline CSS and SVG; no script, font or image
fetched from anywhere), readable without colour (every state is a word and a shape) in the
Okabe-Ito palette, which colour-blind readers tell apart.

Everything a producer wrote (model ids, versions, feature names, alert summaries, which quote
feature names and categories) goes through :func:`html.escape` before it is written, in text
and in attributes alike; link targets are percent-encoded first.

Examples
--------
>>> page = status_page({"now": 0, "step_ms": 60_000, "models": []})
>>> page.startswith("<!doctype html>") and "No model has sent an event yet" in page
True
>>> sparkline([0.2, None, 0.5, 0.4], low=0.0, high=1.0).startswith("<svg")
True
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape
from itertools import pairwise
from typing import Any
from urllib.parse import quote

import numpy as np

from stream.history import STATES

__all__ = ["model_page", "not_found_page", "report_page", "sparkline", "status_page"]

# Okabe-Ito: told apart by the common colour-vision deficiencies.
BLUE, ORANGE, VERMILLION, GREEN, SKY, PURPLE, GREY = (
    "#0072B2",
    "#E69F00",
    "#D55E00",
    "#009E73",
    "#56B4E9",
    "#CC79A7",
    "#666666",
)
#: Each state's colour and shape (the word is always written next to it).
STATE_STYLE = {
    "healthy": (GREEN, "●"),
    "drifting": (ORANGE, "▲"),
    "degraded": (VERMILLION, "■"),
    "stalled": (GREY, "◆"),
    "rolling back": (PURPLE, "↺"),
}
#: Rows the status page shows before "show all" (the worst states first).
PAGE_ROWS = 200
_SEVERITY = {state: rank for rank, state in enumerate(STATES)}
MARK_COLOUR = {"firing": VERMILLION, "resolved": GREEN, "sent": PURPLE}

_CSS = """
body{font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em;
color:#111;background:#fff}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.4em 0 .4em}
.sub{color:#555;margin:0 0 1em}
table{border-collapse:collapse;width:100%}
th,td{padding:.35em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}
th{font-weight:600;background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.state{font-weight:600;white-space:nowrap}.muted{color:#666}
.events{margin:0;padding:0;list-style:none;font-size:.9em}.events li{margin:.1em 0}
.tag{display:inline-block;padding:0 .35em;border-radius:3px;color:#fff;font-size:.85em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:1em}
.card{border:1px solid #ddd;border-radius:4px;padding:.6em}
.card h3{font-size:1em;margin:0 0 .3em;word-break:break-all}
.legend span{margin-right:1.2em}a{color:#0059a0}
"""


def status_page(
    overview: dict[str, Any],
    *,
    refresh: int | None = None,
    title: str = "driftline",
    limit: int | None = PAGE_ROWS,
) -> str:
    """The overview: one row per model, the worst states first (the first ``limit``)."""
    return _document(title, _overview(overview, link=_model_link, limit=limit), refresh)


def model_page(view: dict[str, Any], *, refresh: int | None = None) -> str:
    """One model: its features against their thresholds, versions, alert timeline."""
    body = f'<p><a href="/">← all models</a></p>{_model_section(view)}'
    return _document(f"driftline: {view['model_id']}", body, refresh)


def not_found_page(model_id: str) -> str:
    """The page of a model this worker does not know (yet)."""
    body = (
        f'<p><a href="/">← all models</a></p><h1>{escape(model_id)}</h1>'
        "<p>This worker has no model of that id (yet: models appear with their first event; "
        "with several workers, each shows the models of its partitions).</p>"
    )
    return _document("driftline: no such model", body, None)


def report_page(overview: dict[str, Any], views: Iterable[dict[str, Any]], title: str) -> str:
    """A replay's report: the overview, then each model's section, in one file."""
    sections = "".join(
        f'<section id="{escape(_anchor(view["model_id"]))}">{_model_section(view)}</section>'
        for view in views
    )
    body = _overview(overview, link=lambda m: "#" + _anchor(m)) + sections
    return _document(title, body, None)


def _document(title: str, body: str, refresh: int | None) -> str:
    meta = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<link rel="icon" href="data:,">'  # (no icon to fetch)
        f"{meta}<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def _model_link(model_id: str) -> str:
    return "/models/" + quote(model_id, safe="")


def _anchor(model_id: str) -> str:
    return "model-" + quote(model_id, safe="")


def _overview(overview: dict[str, Any], link: Any, limit: int | None = None) -> str:
    """The overview table, worst states first (then by model id); with a ``limit``, that many
    rows and a link to the rest."""
    models = sorted(overview["models"], key=lambda r: (_SEVERITY.get(r["state"], 0), r["model_id"]))
    counts: dict[str, int] = {}
    for row in models:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no models"
    head = (
        f'<h1>driftline</h1><p class="sub">{len(models)} models: {escape(summary)}'
        f"{_at(overview.get('now'))}</p>"
    )
    if not models:
        return head + "<p>No model has sent an event yet.</p>"
    shown = models if limit is None else models[:limit]
    rows = "".join(_row(row, link) for row in shown)
    more = ""
    if len(shown) < len(models):
        rest = len(models) - len(shown)
        more = (
            f'<p id="more">{rest} more models, in better states than these: '
            '<a href="/?all=1">show all</a></p>'
        )
    legend = (
        '<p class="legend muted">'
        f"<span>{_swatch(BLUE)} F1 (MAE for regression)</span>"
        f"<span>{_swatch(ORANGE, dashed=True)} its estimate before labels</span>"
        f"<span>{_swatch(VERMILLION)} worst feature: drift statistic ÷ threshold "
        "(line: 1)</span></p>"
    )
    return (
        head
        + legend
        + '<table id="models"><thead><tr><th>Model</th><th>State</th><th>Versions</th>'
        "<th>Events/s</th><th>F1 / MAE</th><th>Trend</th><th>Worst feature</th><th>Drift</th>"
        "<th>Latest alerts and commands</th></tr></thead><tbody>" + rows + "</tbody></table>" + more
    )


def _row(row: dict[str, Any], link: Any) -> str:
    model_id = row["model_id"]
    series = row["series"]
    metric = row["metric"]
    value = _fmt(row["value"])
    if row["estimated"] is not None:
        value += f' <span class="muted">(est. {_fmt(row["estimated"])})</span>'
    worst = row["worst_feature"]
    worst_text = (
        "–"
        if worst is None
        else f'{escape(worst["name"])}<br><span class="muted">{_fmt(worst["statistic"])} / '
        f"{_fmt(worst['threshold'])}</span>"
    )
    trend = sparkline(
        series.get("metric", []),
        other=series.get("estimated_metric", []),
        low=0.0 if metric == "f1" else None,
        high=1.0 if metric == "f1" else None,
    )
    drift = sparkline(series.get("worst_drift", []), low=0.0, line=1.0, colour=VERMILLION)
    versions = ", ".join(
        f"<b>{escape(v)}</b>" if v == row["latest_version"] else escape(v) for v in row["versions"]
    )
    return (
        f'<tr data-model="{escape(model_id)}" data-state="{escape(row["state"])}">'
        f'<td><a href="{escape(link(model_id))}">{escape(model_id)}</a></td>'
        f"<td>{_state(row['state'], row['state_since'])}</td>"
        f"<td>{versions}</td>"
        f'<td class="num">{_fmt(row["events_per_second"], 1)}{_sample(row, "<br>")}</td>'
        f'<td class="num">{escape(metric)} {value}</td>'
        f"<td>{trend}</td><td>{worst_text}</td><td>{drift}</td>"
        f"<td>{_events(row['timeline'])}</td></tr>"
    )


def _sample(view: dict[str, Any], joint: str) -> str:
    """A sampled model's share of events monitored (nothing for a model monitored whole)."""
    sample = view.get("sample", 1.0)
    if sample >= 1.0:
        return ""
    return f'{joint}<span class="muted">a {sample * 100:g} % sample</span>'


def _state(state: str, since: int | None) -> str:
    colour, shape = STATE_STYLE.get(state, (GREY, "?"))
    when = f'<br><span class="muted">since {_time(since)}</span>' if since is not None else ""
    return f'<span class="state" style="color:{colour}">{shape} {escape(state)}</span>{when}'


def _events(timeline: list[dict[str, Any]]) -> str:
    if not timeline:
        return '<span class="muted">none</span>'
    items = "".join(
        f'<li title="{escape(e["summary"])}"><span class="tag" style="background:'
        f'{MARK_COLOUR.get(e["status"], GREY)}">{escape(e["status"])}</span> '
        f'{escape(e["type"])}{_what(e)} <span class="muted">{_time(e["at"])}</span></li>'
        for e in reversed(timeline)
    )
    return f'<ul class="events">{items}</ul>'


def _what(entry: dict[str, Any]) -> str:
    feature = entry.get("feature")
    if feature:
        return f": {escape(feature)}"
    version = entry.get("model_version")
    return f" ({escape(version)})" if version else ""


def _model_section(view: dict[str, Any]) -> str:
    model_id = view["model_id"]
    times = view.get("times", [])
    marks = view["timeline"]
    head = (
        f'<h1>{escape(model_id)}</h1><p class="sub">{_state(view["state"], view["state_since"])}'
        f" · latest version {escape(str(view['latest_version']))} · "
        f"{_fmt(view['events_per_second'], 1)} events/s{_sample(view, ' of ')}"
        f"{_at(view.get('now'))}</p>"
    )
    metric = view["metric"]
    overview = (
        '<div class="grid">'
        + _card(
            f"{metric} and its estimate before labels",
            _chart(
                times,
                view["series"].get("metric", []),
                marks,
                other=view["series"].get("estimated_metric", []),
                low=0.0 if metric == "f1" else None,
                high=1.0 if metric == "f1" else None,
            ),
        )
        + _card(
            "events/s", _chart(times, view["series"].get("events_per_second", []), marks, low=0.0)
        )
        + _card(
            "worst feature: statistic ÷ threshold",
            _chart(
                times,
                view["series"].get("worst_drift", []),
                marks,
                low=0.0,
                line=1.0,
                colour=VERMILLION,
            ),
        )
        + "</div>"
    )
    features = "".join(
        _card(
            f"{feature['name']}: {_fmt(feature['statistic'])} / {_fmt(feature['threshold'])}"
            + (" (drift)" if feature["detected"] else ""),
            _chart(
                times,
                feature["ratio"],
                marks,
                low=0.0,
                line=1.0,
                colour=VERMILLION,
                feature=feature["name"],
            ),
            detected=feature["detected"],
        )
        for feature in view["features"]
    )
    features_html = (
        f'<h2>Features</h2><p class="muted">Each feature\'s drift statistic divided by its '
        f"threshold (1: the threshold; above it, drift). Marks: alerts and commands.</p>"
        f'<div class="grid" id="features">{features}</div>'
        if features
        else '<h2>Features</h2><p class="muted">No feature has a drift statistic yet.</p>'
    )
    return head + overview + features_html + _versions(view["version_details"]) + _timeline(marks)


def _card(title: str, content: str, detected: bool = False) -> str:
    border = f' style="border-color:{VERMILLION}"' if detected else ""
    return f'<div class="card"{border}><h3>{escape(title)}</h3>{content}</div>'


def _versions(versions: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{_bold(escape(v['version']), v['latest'])}</td>"
        f"<td>{_time(v['first_seen'])}</td><td>{_time(v['last_seen'])}</td>"
        f'<td class="num">{v["outcomes"]}</td>'
        f"<td>{escape(_pairs(v['metrics']))}</td>"
        f"<td>{escape(v['estimation'] or '–')}</td><td>{escape(_pairs(v['estimated']))}</td></tr>"
        for v in versions
    )
    return (
        '<h2>Versions</h2><table id="versions"><thead><tr><th>Version</th><th>First seen</th>'
        "<th>Last seen</th><th>Labelled outcomes</th><th>Metrics (rolling window)</th>"
        f"<th>Estimation</th><th>Estimated</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _timeline(marks: list[dict[str, Any]]) -> str:
    if not marks:
        return '<h2>Alerts and commands</h2><p class="muted">None so far.</p>'
    rows = "".join(
        f'<tr><td>{_time(e["at"])}</td><td><span class="tag" style="background:'
        f'{MARK_COLOUR.get(e["status"], GREY)}">{escape(e["status"])}</span></td>'
        f"<td>{escape(e['type'])}</td><td>{escape(e['model_version'] or '')}</td>"
        f"<td>{escape(e['feature'] or e['signal'])}</td><td>{escape(e['summary'])}</td></tr>"
        for e in reversed(marks)
    )
    return (
        '<h2>Alerts and commands</h2><table id="timeline"><thead><tr><th>Event time</th>'
        "<th>Status</th><th>Type</th><th>Version</th><th>Feature / signal</th><th>Summary</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def sparkline(
    values: list[float | None],
    *,
    other: list[float | None] | None = None,
    low: float | None = None,
    high: float | None = None,
    line: float | None = None,
    colour: str = BLUE,
    width: int = 140,
    height: int = 30,
) -> str:
    """A small inline SVG of ``values`` (and ``other``, dashed), gaps where a value is None,
    with an optional horizontal ``line`` (a threshold); at most :data:`SPARK_WIDTH_POINTS`
    points drawn (the later of each pair when there are more)."""
    values, other = _thin(values), None if other is None else _thin(other)
    return _svg(values, other, low, high, line, colour, width, height, [], [], 2)


#: Points a sparkline draws at most (two pixels apart at its width).
SPARK_WIDTH_POINTS = 70


def _thin(series: np.ndarray | list[float | None]) -> np.ndarray:
    values = _array(series)
    step = -(-len(values) // SPARK_WIDTH_POINTS)  # (ceiling)
    return values[len(values) - 1 :: -step][::-1] if step > 1 else values


def _chart(
    times: list[int],
    values: list[float | None],
    marks: list[dict[str, Any]],
    *,
    other: list[float | None] | None = None,
    low: float | None = None,
    high: float | None = None,
    line: float | None = None,
    colour: str = BLUE,
    feature: str | None = None,
) -> str:
    """A chart of a series over ``times`` with the alerts and commands marked (for a feature's
    chart: its own alerts and the model's commands)."""
    kept = [m for m in marks if feature is None or m["feature"] in (None, feature)]
    svg = _svg(values, other, low, high, line, colour, 320, 90, times, kept, 4)
    if times:
        span = f"{_time(times[0])} – {_time(times[-1])}"
        return f'{svg}<div class="muted" style="font-size:.8em">{span}</div>'
    return svg


def _svg(
    values: list[float | None],
    other: list[float | None] | None,
    low: float | None,
    high: float | None,
    line: float | None,
    colour: str,
    width: int,
    height: int,
    times: list[int],
    marks: list[dict[str, Any]],
    pad: int,
) -> str:
    # Coordinates in tenths of a pixel (viewBox x10): integers, quick to write.
    series = [_array(values), _array([] if other is None else other)]
    known = np.concatenate([a[np.isfinite(a)] for a in series])
    if not len(known):
        return (
            f'<svg width="{width}" height="{height}" role="img" aria-label="no data yet">'
            f'<text x="4" y="{height // 2 + 4}" font-size="11" fill="{GREY}">no data yet</text>'
            "</svg>"
        )
    lo = float(known.min()) if low is None else min(low, float(known.min()))
    hi = float(known.max()) if high is None else max(high, float(known.max()))
    if line is not None:
        hi = max(hi, line * 1.1)
        lo = min(lo, line)
    if hi - lo < 1e-12:
        hi, lo = hi + 0.5, lo - 0.5
    n = max(len(series[0]), len(series[1]), 2)
    span_x, span_y = 10 * (width - 2 * pad), 10 * (height - 2 * pad)
    if len(times) == n and times[-1] > times[0]:
        # (along time: steps without a point leave a gap)
        at = np.asarray(times, dtype=np.float64)
        xs = 10 * pad + span_x * (at - at[0]) / (at[-1] - at[0])
    else:
        xs = 10 * pad + span_x * np.arange(n) / (n - 1)
    xs = np.rint(xs).astype(np.int64)

    def y(v: np.ndarray | float) -> np.ndarray:
        return np.rint(10 * (height - pad) - span_y * (np.asarray(v) - lo) / (hi - lo))

    parts = []
    if line is not None:
        level = int(y(line))
        parts.append(
            f'<line x1="{10 * pad}" x2="{10 * (width - pad)}" y1="{level}" y2="{level}" '
            f'stroke="{GREY}" stroke-width="10" stroke-dasharray="20,20"/>'
        )
    if times and marks:
        first, last = times[0], times[-1]
        for mark in marks:
            if first <= mark["at"] <= last + 1 and last > first:
                mx = round(10 * pad + span_x * (mark["at"] - first) / (last - first))
                parts.append(
                    f'<line class="mark" x1="{mx}" x2="{mx}" y1="0" y2="{10 * height}" '
                    f'stroke="{MARK_COLOUR.get(mark["status"], GREY)}" stroke-width="15">'
                    f"<title>{escape(mark['status'])} {escape(mark['type'])}: "
                    f"{escape(mark['summary'])}</title></line>"
                )
    for points, stroke, dash in zip(
        series, (colour, ORANGE), ("", ' stroke-dasharray="40,30"'), strict=True
    ):
        if not len(points):
            continue
        ys = y(points)
        for run in _runs(np.isfinite(points)):
            if len(run) == 1:
                i = int(run[0])
                parts.append(f'<circle cx="{xs[i]}" cy="{int(ys[i])}" r="15" fill="{stroke}"/>')
                continue
            pairs = np.empty(2 * len(run), dtype=np.int64)
            pairs[0::2], pairs[1::2] = xs[run], ys[run]
            parts.append(
                f'<polyline fill="none" stroke="{stroke}" stroke-width="15"{dash} '
                f'points="{" ".join(map(str, pairs.tolist()))}"/>'
            )
    label = f"from {_fmt(float(known[0]))} to {_fmt(float(known[-1]))}"
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {10 * width} {10 * height}" '
        f'role="img" aria-label="{escape(label)}">{"".join(parts)}</svg>'
    )


def _array(series: np.ndarray | list[float | None]) -> np.ndarray:
    """A series as floats, NaN where a point is missing (a view's arrays as they are)."""
    if isinstance(series, np.ndarray):
        return series.astype(np.float64)
    return np.array([np.nan if v is None else v for v in series], dtype=np.float64)


def _runs(finite: np.ndarray) -> list[np.ndarray]:
    """The indices of each stretch of finite points."""
    index = np.flatnonzero(finite)
    if not len(index):
        return []
    if index[-1] - index[0] == len(index) - 1:  # (the usual case: no gap)
        return [index]
    breaks = [0, *(np.flatnonzero(np.diff(index) > 1) + 1).tolist(), len(index)]
    return [index[a:b] for a, b in pairwise(breaks)]


def _swatch(colour: str, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="4,3"' if dashed else ""
    return (
        '<svg width="22" height="8"><line x1="1" x2="21" y1="4" y2="4" '
        f'stroke="{colour}" stroke-width="2"{dash}/></svg>'
    )


def _bold(text: str, bold: bool) -> str:
    return f"<b>{text}</b>" if bold else text


def _pairs(values: dict[str, float | None]) -> str:
    return ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(values.items())) or "–"


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}"


def _time(ms: int | None) -> str:
    if ms is None:
        return "–"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _at(ms: int | None) -> str:
    return f" · at {_time(ms)} UTC" if ms is not None else ""
