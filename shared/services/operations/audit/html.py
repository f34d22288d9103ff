"""The audit report as one self-contained HTML page: inline CSS, an inline SVG chart, no JS.

Every value from the report goes through ``html.escape`` (SKUs and customer numbers come from
the ERP and may contain ``<``, ``&`` or quotes), so the page cannot be turned into markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from html import escape

from shared.services.operations.audit.models import (
    AuditReport,
    ConnectivityLayer,
    DataLayer,
    HistoryPoint,
    LogicLayer,
    Usage,
    Verdict,
)
from shared.services.operations.impact import ImpactReport

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;
color:#1d2430;background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}
h3{font-size:15px;margin:16px 0 6px}
.meta{color:#5b6575;margin-bottom:16px}
.banner{border-radius:6px;padding:10px 14px;margin:8px 0;color:#fff}
.pass{background:#1f7a3f}.fail{background:#b3261e}
.banner ul{margin:4px 0 0 18px;padding:0}
table{border-collapse:collapse;background:#fff;margin:6px 0 12px;min-width:50%}
th,td{border:1px solid #d9dde3;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1f7a3f;font-weight:600}.bad{color:#b3261e;font-weight:600}
.card{background:#fff;border:1px solid #d9dde3;border-radius:6px;padding:10px 14px;margin:8px 0}
code{background:#eef1f5;padding:1px 4px;border-radius:3px}
.formula{color:#5b6575;font-size:13px}
"""


def _e(value: object) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, datetime):
        return escape(value.strftime("%Y-%m-%d %H:%M:%S UTC"))
    if isinstance(value, Decimal):
        return escape(format(value, "f"))
    return escape(str(value))


def _pct(value: Decimal | None) -> str:
    return "&ndash;" if value is None else escape(f"{(value * 100).quantize(Decimal('0.01'))} %")


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: frozenset[int] = frozenset()
) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_e(cell)}</td>' if i in numeric else f"<td>{_e(cell)}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _banner(verdict: Verdict) -> str:
    state = "pass" if verdict.passed else "fail"
    title = f"{verdict.layer}: {'PASS' if verdict.passed else 'FAIL'}"
    reasons = "".join(f"<li>{_e(r)}</li>" for r in verdict.reasons)
    objectives = ", ".join(f"{_e(k)} {_e(v)}" for k, v in verdict.objectives.items())
    return (
        f'<div class="banner {state}"><strong>{escape(title)}</strong>'
        f"{f'<ul>{reasons}</ul>' if reasons else ''}"
        f'<div style="opacity:.85;font-size:12px">objectives: {objectives}</div></div>'
    )


def _svg_text(x: float, y: float, text: str, anchor: str = "start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="11" text-anchor="{anchor}" '
        f'fill="#5b6575">{escape(text)}</text>'
    )


def chart_svg(points: Sequence[HistoryPoint], width: int = 760, height: int = 220) -> str:
    """Accuracy (audits) and drift rate (reconciliations) in percent over time."""
    if not points:
        return (
            '<p class="formula">No history yet: the chart fills as audits and '
            "reconciliations run.</p>"
        )
    left, right, top, bottom = 48, 16, 14, 34
    times = [p.at.timestamp() for p in points]
    t0 = min(times)
    span = (max(times) - t0) or 1.0

    def x(at: datetime) -> float:
        return left + (at.timestamp() - t0) / span * (width - left - right)

    def y(share: Decimal) -> float:
        return top + (1 - float(share)) * (height - top - bottom)

    grid = ""
    for value in (0, 25, 50, 75, 100):
        level = y(Decimal(value) / 100)
        grid += (
            f'<line x1="{left}" x2="{width - right}" y1="{level:.1f}" y2="{level:.1f}" '
            'stroke="#e3e6ea"/>'
        ) + _svg_text(left - 6, level + 4, f"{value}%", "end")

    def series(values: list[tuple[datetime, Decimal]], colour: str) -> str:
        if not values:
            return ""
        path = " ".join(f"{x(at):.1f},{y(v):.1f}" for at, v in values)
        dots = "".join(
            f'<circle cx="{x(at):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
            f"<title>{_e(at)}: {_pct(v)}</title></circle>"
            for at, v in values
        )
        return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>{dots}'

    accuracy = [(p.at, p.accuracy) for p in points if p.accuracy is not None]
    drift = [(p.at, p.drift_rate) for p in points if p.drift_rate is not None]
    legend = (
        f'<rect x="{left}" y="{height - 16}" width="10" height="10" fill="#1f5fbf"/>'
        + _svg_text(left + 14, height - 7, "transactional accuracy (audits)")
        + f'<rect x="{left + 230}" y="{height - 16}" width="10" height="10" fill="#d9822b"/>'
        + _svg_text(left + 244, height - 7, "stock drift rate (reconciliations)")
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        'aria-label="accuracy and drift over time" '
        'style="background:#fff;border:1px solid #d9dde3">'
        f"{grid}{series(accuracy, '#1f5fbf')}{series(drift, '#d9822b')}{legend}</svg>"
    )


def _data_section(layer: DataLayer) -> str:
    rows = [
        (
            d.name,
            d.product_side,
            d.erp.count,
            d.product.count,
            d.erp.checksum,
            d.product.checksum,
            d.missing.total,
            d.extra.total,
            d.differing.total,
            d.over_policy,
            d.excluded,
            "in sync" if d.in_sync else "differs",
        )
        for d in layer.datasets
    ]
    parts = [
        _banner(layer.verdict),
        f'<p class="meta">ERP reads: {_e(layer.erp_reads)} requests in {_e(layer.seconds)} s; '
        f"price publisher last succeeded {_e(layer.publisher_last_success)}</p>",
        _table(
            [
                "dataset",
                "product side",
                "ERP rows",
                "product rows",
                "ERP checksum",
                "product checksum",
                "missing",
                "extra",
                "different",
                "older than policy",
                "excluded",
                "state",
            ],
            rows,
            numeric=frozenset({2, 3, 6, 7, 8, 9, 10}),
        ),
    ]
    for d in layer.datasets:
        issues = [
            (kind, issue.key, issue.age_seconds, "yes" if issue.over_policy else "no")
            for kind, listing in (
                ("missing", d.missing),
                ("extra", d.extra),
                ("different", d.differing),
            )
            for issue in listing.rows
        ]
        if issues:
            shown = len(issues)
            total = d.missing.total + d.extra.total + d.differing.total
            parts.append(f"<h3>{_e(d.name)}: first {shown} of {total} issues</h3>")
            parts.append(
                _table(["kind", "key", "age (s)", "older than policy"], issues, frozenset({2}))
            )
    return "".join(parts)


def _principals_table(use: Usage) -> str:
    """Each principal's share of its own budget (BC counts them apart), then the total."""
    if not use.principals:
        return ""
    rows: list[Sequence[object]] = [
        (
            p.principal,
            f"{p.window_requests} of {p.budget}",
            _pct(p.budget_share).replace("&ndash;", "-"),
            p.day_requests,
            p.day_throttled,
            p.day_retries,
            p.day_breaker_openings,
            p.breaker_state,
        )
        for p in use.principals
    ]
    rows.append(
        (
            "total",
            f"{use.window_requests} of {use.budget}",
            _pct(use.budget_share).replace("&ndash;", "-"),
            use.day_requests,
            use.day_throttled,
            use.day_retries,
            use.day_breaker_openings,
            None,
        )
    )
    return "<h3>ERP requests per principal</h3>" + _table(
        [
            "principal",
            f"requests ({use.window_seconds // 60} min)",
            "budget share",
            "requests (24 h)",
            "throttled (24 h)",
            "retries (24 h)",
            "breaker openings (24 h)",
            "breaker now",
        ],
        rows,
        frozenset({1, 2, 3, 4, 5, 6}),
    )


def _connectivity_section(layer: ConnectivityLayer) -> str:
    lat, use = layer.latency, layer.usage
    return "".join(
        [
            _banner(layer.verdict),
            _table(
                ["figure", "value"],
                [
                    ("ERP latency p50 (read replica)", f"{_e(lat.p50_ms)} ms"),
                    ("ERP latency p99 (read replica)", f"{_e(lat.p99_ms)} ms"),
                    ("probes / failed", f"{lat.probes} / {lat.failures}"),
                    (
                        f"requests in the last {use.window_seconds // 60} min",
                        f"{use.window_requests} of {use.budget}",
                    ),
                    ("budget share", _pct(use.budget_share).replace("&ndash;", "-")),
                    (
                        "requests / throttled / retries (24 h)",
                        f"{use.day_requests} / {use.day_throttled} / {use.day_retries}",
                    ),
                    (
                        "breaker openings (24 h) / state now",
                        f"{use.day_breaker_openings} / {use.breaker_state}",
                    ),
                ],
            ),
            _principals_table(use),
            "<h3>Queues</h3>",
            _table(
                [
                    "queue",
                    "dead letters",
                    "oldest dead letter (s)",
                    "waiting",
                    "oldest waiting (s)",
                    "error",
                ],
                [
                    (
                        q.queue,
                        f"{q.dead_letters}{'+' if q.dead_letters_capped else ''}",
                        q.oldest_dead_letter_seconds,
                        f"{q.waiting}{'+' if q.waiting_capped else ''}",
                        q.oldest_waiting_seconds,
                        q.error,
                    )
                    for q in layer.queues
                ],
                frozenset({1, 2, 3, 4}),
            ),
            "<h3>Business Central webhook subscriptions</h3>",
            _table(
                ["resource", "subscription", "expires", "hours left", "state"],
                [
                    (
                        s.resource,
                        s.subscription_id,
                        s.expires_at,
                        s.hours_left,
                        "ok" if s.ok else s.problem,
                    )
                    for s in layer.subscriptions
                ],
                frozenset({3}),
            ),
        ]
    )


def _logic_section(layer: LogicLayer) -> str:
    parts = [
        _banner(layer.verdict),
        f'<p class="meta">Sample of {layer.sample_size} (customer, item, quantity) triples, seed '
        f"{layer.seed}: {layer.agreed} of {layer.compared} agree, accuracy "
        f"<strong>{_pct(layer.accuracy)}</strong>; ERP sales quotes created "
        f"{layer.quotes_created}, deleted {layer.quotes_deleted}.</p>",
    ]
    if layer.mismatches:
        parts.append(f"<h3>Mismatches ({layer.mismatch_total})</h3>")
        parts.append(
            _table(
                [
                    "customer",
                    "item",
                    "qty",
                    "product unit price",
                    "ERP unit price",
                    "product disc. %",
                    "ERP disc. %",
                    "product amount",
                    "ERP amount",
                    "product's winning line",
                    "note",
                ],
                [
                    (
                        m.customer,
                        m.item,
                        m.quantity,
                        m.product_unit_price,
                        m.erp_unit_price,
                        m.product_discount_percent,
                        m.erp_discount_percent,
                        m.product_line_amount,
                        m.erp_line_amount,
                        None
                        if m.winning_line is None
                        else f"{m.winning_line.type} {m.winning_line.price_list_code} "
                        f"(min {m.winning_line.minimum_quantity})",
                        m.problem,
                    )
                    for m in layer.mismatches
                ],
                frozenset({2, 3, 4, 5, 6, 7, 8}),
            )
        )
    if layer.errors:
        parts.append(f"<h3>Not comparable ({len(layer.errors)})</h3>")
        parts.append(
            _table(
                ["customer", "item", "qty", "problem"],
                [(e.customer, e.item, e.quantity, e.problem) for e in layer.errors],
                frozenset({2}),
            )
        )
    if layer.booking_surprises:
        parts.append("<h3>Accepted at intake, rejected or repriced at booking</h3>")
        parts.append(
            _table(
                ["order", "customer", "day", "kind", "intake total", "ERP total", "reason"],
                [
                    (
                        b.order_id,
                        b.customer,
                        b.day,
                        b.kind,
                        f"{b.intake_total} {b.currency}",
                        None if b.erp_total is None else f"{b.erp_total} {b.currency}",
                        b.reason,
                    )
                    for b in layer.booking_surprises
                ],
            )
        )
    return "".join(parts)


def impact_section(impact: ImpactReport | None) -> str:
    """The headline figure with its formula next to it, then the totals and the busy days."""
    if impact is None:
        return ""
    totals = impact.totals
    busy = [
        (
            d.day,
            d.caught_orders,
            d.booked,
            d.repriced,
            d.failed_at_booking,
            d.saved_by_approval,
            d.saved_by_backorder,
            d.rejected_at_approval,
        )
        for d in impact.per_day
        # Orders saved by approval or backorder are booked ones, so only the rejections at
        # approval need their own test here.
        if d.caught_orders or d.booked or d.failed_at_booking or d.rejected_at_approval
    ]
    return "".join(
        [
            '<div class="card"><div style="font-size:20px"><strong>'
            f"{_e(impact.estimated_cost_avoided_per_month)} {_e(impact.currency)}</strong> "
            "estimated cost avoided per month</div>"
            f'<div class="formula">= {_e(impact.formula)}</div>'
            f'<div class="formula">window {_e(impact.first_day)} to {_e(impact.last_day)}, '
            f"{_e(impact.observed_days)} observed day(s)</div></div>",
            _table(
                ["figure", "count"],
                [
                    ("orders with problems caught at intake", totals.caught_orders),
                    ("of which manual corrections avoided", totals.caught_corrections),
                    ("of which oversold orders avoided", totals.caught_stock_conflicts),
                    *((f"caught: {name}", count) for name, count in totals.caught.items()),
                    ("booked", totals.booked),
                    ("repriced at booking (reached the ERP)", totals.repriced),
                    ("failed at booking (reached the ERP)", totals.failed_at_booking),
                    ("orders saved by approval (booked)", totals.saved_by_approval),
                    ("orders saved by backorder (booked)", totals.saved_by_backorder),
                    ("held orders rejected or expired", totals.rejected_at_approval),
                ],
                frozenset({1}),
            ),
            _table(
                [
                    "day",
                    "caught at intake",
                    "booked",
                    "repriced",
                    "failed at booking",
                    "saved by approval",
                    "saved by backorder",
                    "rejected or expired at approval",
                ],
                busy,
                frozenset({1, 2, 3, 4, 5, 6, 7}),
            )
            if busy
            else "",
        ]
    )


def render_html(report: AuditReport, impact_html: str | None = None) -> str:
    """The whole page."""
    overall = "pass" if report.passed else "fail"
    sections = [
        f'<div class="banner {overall}"><strong>Overall: '
        f"{'PASS' if report.passed else 'FAIL'}</strong> "
        f"&mdash; layers audited: {_e(', '.join(report.layers))}</div>",
        "<h2>Accuracy and drift over time</h2>",
        chart_svg(report.history),
    ]
    if report.data is not None:
        sections += ["<h2>1. Data baseline</h2>", _data_section(report.data)]
    if report.connectivity is not None:
        sections += ["<h2>2. Connectivity</h2>", _connectivity_section(report.connectivity)]
    if report.logic is not None:
        sections += ["<h2>3. Logic consistency</h2>", _logic_section(report.logic)]
    if impact_html is not None or report.impact is not None:
        sections += [
            "<h2>Business impact</h2>",
            impact_html if impact_html is not None else impact_section(report.impact),
        ]
    if report.notes:
        sections.append(
            "<h3>Notes</h3><ul>" + "".join(f"<li>{_e(n)}</li>" for n in report.notes) + "</ul>"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Integration audit {_e(report.run_id)}</title><style>{_CSS}</style></head><body>"
        "<h1>Integration audit</h1>"
        f'<div class="meta">run {_e(report.run_id)} &middot; {_e(report.started_at)} &rarr; '
        f"{_e(report.finished_at)}</div>" + "".join(sections) + "</body></html>"
    )
