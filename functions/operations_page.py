"""The operations page as one small server-rendered HTML document.

No front-end build, no script, no external assets: inline CSS, an inline SVG bar chart, and
plain forms for Replay, so it works from any browser that can reach the admin route. Every
value that came from storage, the bus or a request goes through ``_e`` (html.escape).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime
from urllib.parse import quote, urlencode

from shared.adapters.stores.timer_runs import TimerStatus
from shared.services.operations.dead_letters import DeadLetterCounts
from shared.services.operations.overview import DriftRun, OperationsOverview

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5rem;color:#1b1f24;
background:#f6f8fa}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
.muted{color:#57606a}.flash{background:#ddf4ff;border:1px solid #54aeff;padding:.5rem .8rem;
border-radius:6px;margin:.8rem 0}
.glance{display:grid;grid-template-columns:repeat(auto-fill,minmax(15rem,1fr));gap:.6rem}
.area{border-radius:6px;padding:.5rem .7rem;border:1px solid #d0d7de;background:#fff}
.area b{display:block;text-transform:capitalize}
.green{border-left:.5rem solid #2da44e}.amber{border-left:.5rem solid #d4a72c}
.red{border-left:.5rem solid #cf222e}
table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:.4rem}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#eaeef2}td.num{text-align:right;font-variant-numeric:tabular-nums}
.r-ok{color:#1a7f37}.r-failed{color:#cf222e;font-weight:600}.r-running{color:#0969da}
.r-skipped-lease-held{color:#9a6700}.r-interrupted{color:#bc4c00;font-weight:600}
.dots span{display:inline-block;width:.6rem;height:.6rem;border-radius:50%;margin-right:2px}
.d-ok{background:#2da44e}.d-failed{background:#cf222e}.d-running{background:#0969da}
.d-skipped-lease-held{background:#d4a72c}.d-interrupted{background:#bc4c00}
button{cursor:pointer;padding:.2rem .7rem}svg{background:#fff;border:1px solid #d0d7de}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _time(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = int(seconds)
    if whole < 120:
        return f"{whole}s ago"
    if whole < 7200:
        return f"{whole // 60}m ago"
    if whole < 172800:
        return f"{whole // 3600}h {whole % 3600 // 60}m ago"
    return f"{whole // 86400}d ago"


def _table(headers: Sequence[str], rows: Iterable[str], empty: str) -> str:
    body = "".join(rows)
    if not body:
        return f'<p class="muted">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _status(overview: OperationsOverview) -> str:
    boxes = "".join(
        f'<div class="area {_e(s.level)}" data-area="{_e(s.area)}" data-level="{_e(s.level)}">'
        f"<b>{_e(s.area)}: {_e(s.level)}</b>{_e(s.reason)}</div>"
        for s in overview.status
    )
    return f'<section id="status"><div class="glance">{boxes}</div></section>'


def _timers(timers: Sequence[TimerStatus]) -> str:
    rows = []
    for timer in timers:
        last = timer.last_run
        result = "never ran" if last is None else last.result
        seconds = "" if last is None or last.seconds is None else last.seconds
        dots = "".join(
            f'<span class="d-{_e(run.result)}" title="{_e(_time(run.started_at))}: '
            f'{_e(run.result)}"></span>'
            for run in reversed(timer.history)
        )
        rows.append(
            f'<tr data-timer="{_e(timer.name)}"><td>{_e(timer.name)}</td>'
            f'<td class="r-{_e(result)}">{_e(result)}</td>'
            f"<td>{_e(_time(last.started_at if last else None))}</td>"
            f"<td>{_e(_age(timer.age_seconds))}</td>"
            f'<td class="num">{_e(seconds)}</td>'
            f"<td>{_e(last.error if last else '')}</td>"
            f'<td class="dots">{dots}</td></tr>'
        )
    table = _table(
        ["timer", "last result", "started", "age", "seconds", "error", "history (old to new)"],
        rows,
        "no timers",
    )
    return f'<section id="timers"><h2>Timers</h2>{table}</section>'


def _watermarks(overview: OperationsOverview) -> str:
    rows = [
        f'<tr data-job="{_e(w.job)}"><td>{_e(w.job)}</td><td>{_e(_time(w.watermark))}</td>'
        f"<td>{_e(_age(w.watermark_age_seconds))}</td><td>{_e(_time(w.last_success_at))}</td>"
        f"<td>{_e(_age(w.success_age_seconds))}</td></tr>"
        for w in overview.watermarks
    ]
    table = _table(
        ["job", "watermark", "age", "last success", "age"], rows, "no watermarks stored yet"
    )
    return f'<section id="watermarks"><h2>Watermarks</h2>{table}</section>'


def _replay_form(entity: str, key: str | None) -> str:
    query = {"limit": "100", **({"code": key} if key else {})}
    # Relative to /<prefix>/ops/dashboard, so it works whatever the route prefix is.
    action = f"deadletters/{quote(entity, safe=':')}/replay?{urlencode(query)}"
    return (
        f'<form method="post" action="{_e(action)}" data-entity="{_e(entity)}">'
        f'<input type="hidden" name="from" value="dashboard">'
        f'<button type="submit">Replay</button></form>'
    )


def _dead_letters(counts: DeadLetterCounts | None, key: str | None) -> str:
    if counts is None:
        return '<section id="deadletters"><h2>Dead letters</h2><p>unreadable</p></section>'
    rows = []
    for item in counts.entities:
        first = "<br>".join(
            f"{_e(m.message_id)}: {_e(m.reason)} {_e(m.description[:120])}" for m in item.messages
        )
        button = _replay_form(item.entity, key) if item.count else ""
        rows.append(
            f'<tr data-entity="{_e(item.entity)}"><td>{_e(item.entity)}</td>'
            f"<td>{_e(item.kind)}</td>"
            f'<td class="num dlq-count" data-entity="{_e(item.entity)}">{_e(item.display)}</td>'
            f"<td>{first}{_e(item.error)}</td><td>{button}</td></tr>"
        )
    table = _table(["entity", "kind", "dead-lettered", "first messages", ""], rows, "none")
    return f'<section id="deadletters"><h2>Dead letters</h2>{table}</section>'


def drift_chart(drift: Sequence[DriftRun], width: int = 480, height: int = 120) -> str:
    """Drifted keys per reconciliation run, oldest left, as an inline SVG bar chart."""
    runs = list(reversed(drift))
    if not runs:
        return '<p class="muted">no reconciliation runs yet</p>'
    top = max(max(run.drifted for run in runs), 1)
    slot = width / len(runs)
    bars = []
    for index, run in enumerate(runs):
        bar = 0 if run.drifted == 0 else max(2, round(run.drifted / top * (height - 20)))
        colour = (
            "#cf222e" if run.outcome != "succeeded" else "#d4a72c" if run.drifted else "#2da44e"
        )
        x = round(index * slot + slot * 0.15, 1)
        title = (
            f"{_time(run.started_at)}: {run.outcome}, {run.drifted} drifted, "
            f"largest {run.largest_drift}"
        )
        bars.append(
            f'<rect x="{x}" y="{height - 14 - bar}" width="{round(slot * 0.7, 1)}" '
            f'height="{max(bar, 1)}" fill="{colour}"><title>{_e(title)}</title></rect>'
            f'<text x="{x}" y="{height - 2}" font-size="10">{run.drifted}</text>'
        )
    return (
        f'<svg role="img" aria-label="drifted keys per reconciliation run" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">{"".join(bars)}</svg>'
    )


def _drift(drift: Sequence[DriftRun]) -> str:
    rows = [
        f"<tr><td>{_e(_time(run.started_at))}</td><td>{_e(run.outcome)}</td>"
        f'<td class="num">{run.checked}</td><td class="num">{run.drifted}</td>'
        f'<td class="num">{run.seeded}</td><td class="num">{_e(run.largest_drift)}</td>'
        f"<td>{_e(run.largest_sku)}{'@' if run.largest_location else ''}"
        f"{_e(run.largest_location)}</td></tr>"
        for run in drift
    ]
    table = _table(
        ["started", "outcome", "checked", "drifted", "seeded", "largest", "where"], rows, ""
    )
    return f'<section id="drift"><h2>Reconciliation drift</h2>{drift_chart(drift)}{table}</section>'


def _erp(overview: OperationsOverview) -> str:
    rows = [
        f'<tr><td>{_e(name)}</td><td class="num">{value}</td></tr>'
        for name, value in overview.erp.counters.items()
    ]
    return (
        f'<section id="erp"><h2>ERP client (this instance)</h2>'
        f'<p>Circuit breaker: <b id="breaker-state">{_e(overview.erp.breaker_state)}</b></p>'
        f"{_table(['counter', 'value'], rows, '')}{_erp_principals(overview)}</section>"
    )


def _erp_principals(overview: OperationsOverview) -> str:
    """Each booking principal's counters side by side (BC counts each on its own)."""
    principals = overview.erp.principals
    if not principals:
        return ""
    names = list(principals[0].counters)
    rows = [
        f'<tr data-principal="{_e(p.principal)}"><td>{_e(p.principal)}</td>'
        f"<td>{_e(p.breaker_state)}</td>"
        + "".join(f'<td class="num">{p.counters.get(name, 0)}</td>' for name in names)
        + "</tr>"
        for p in principals
    ]
    return "<h3>Per principal</h3>" + _table(["principal", "breaker", *names], rows, "")


def _health(overview: OperationsOverview) -> str:
    rows = [
        f"<tr><td>{_e(d.name)}</td><td>{_e(d.status)}</td>"
        f'<td class="num">{d.latency_ms}</td><td class="num">{d.age_ms / 1000:.1f}</td>'
        f"<td>{_e(d.detail)}</td></tr>"
        for d in overview.health
    ]
    table = _table(["dependency", "status", "ms", "age (s)", "detail"], rows, "not checked")
    return f'<section id="health"><h2>Health</h2>{table}</section>'


def _extra(overview: OperationsOverview) -> str:
    parts = []
    for section in overview.extra_sections:
        rows = [f"<tr><td>{_e(r.key)}</td><td>{_e(r.value)}</td></tr>" for r in section.rows]
        age = (
            f'<p class="age">read {_e(_time(section.checked_at))},'
            f" {section.age_ms / 1000:.1f} s ago</p>"
            if section.checked_at
            else ""
        )
        parts.append(
            f"<section><h2>{_e(section.title)}</h2>{age}{_table(['', ''], rows, '')}</section>"
        )
    if overview.section_errors:
        rows = [
            f"<tr><td>{_e(name)}</td><td>{_e(error)}</td></tr>"
            for name, error in overview.section_errors.items()
        ]
        parts.append(f"<section><h2>Unreadable sections</h2>{_table(['', ''], rows, '')}</section>")
    return "".join(parts)


def render_page(overview: OperationsOverview, key: str | None, flash: str = "") -> str:
    """The whole page; ``key`` is the admin key the page was opened with (for Replay forms)."""
    notice = f'<p class="flash" id="flash">{_e(flash)}</p>' if flash else ""
    overview_link = "overview" + (f"?{urlencode({'code': key})}" if key else "")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>Operations</title><style>{_CSS}</style></head><body>"
        f'<h1>Operations</h1><p class="muted">generated {_e(_time(overview.generated_at))}'
        f' &middot; <a href="{_e(overview_link)}">JSON</a></p>{notice}'
        f"{_status(overview)}{_timers(overview.timers)}{_watermarks(overview)}"
        f"{_dead_letters(overview.dead_letters, key)}{_drift(overview.drift)}{_erp(overview)}"
        f"{_health(overview)}{_extra(overview)}</body></html>"
    )
