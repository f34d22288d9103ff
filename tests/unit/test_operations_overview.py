"""Operations overview: status rules, the page's escaping and chart, replay MessageIds, entities."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from functions.operations_page import drift_chart, render_page
from shared.adapters.dead_letter_queues import DeadLetteredMessage
from shared.adapters.erp.breaker import BreakerState
from shared.adapters.erp.request_pipeline import ErpCounters
from shared.adapters.stores.timer_runs import TimerRunView, TimerStatus
from shared.services.operations import dead_letters
from shared.services.operations import overview as operations
from shared.services.operations import status as operations_status
from tests.infra.bicep import ROOT

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _timer(
    name: str, result: str | None, error: str = "", age: timedelta = timedelta()
) -> TimerStatus:
    if result is None:
        return TimerStatus(name=name, never_ran=True)
    run = TimerRunView.model_validate(
        {"run_id": "r", "started_at": NOW - age, "result": result, "error": error}
    )
    return TimerStatus(name=name, never_ran=False, last_run=run, history=[run])


def _counts(**per_entity: int) -> dead_letters.DeadLetterCounts:
    return dead_letters.DeadLetterCounts(
        entities=[
            dead_letters.DeadLetterCount(entity=e, kind="queue", count=n, display=str(n))
            for e, n in per_entity.items()
        ],
        total=sum(per_entity.values()),
        checked_at=NOW,
    )


def _drift(outcome: str = "succeeded", drifted: int = 0, largest: str = "0") -> operations.DriftRun:
    return operations.DriftRun(
        run_id="x",
        outcome=outcome,
        drifted=drifted,
        checked=10,
        largest_drift=largest,
        largest_sku="SKU-1",
        largest_location="EAST",
    )


def test_timer_status_is_red_on_a_failure_and_amber_when_a_timer_never_ran() -> None:
    red = operations_status.timers_status(
        [_timer("a", "ok"), _timer("b", "failed", "ErpUnavailable: down")], NOW
    )
    amber = operations_status.timers_status([_timer("a", "ok"), _timer("idle", None)], NOW)
    stopped = operations_status.timers_status([_timer("a", "ok"), _timer("k", "interrupted")], NOW)
    green = operations_status.timers_status([_timer("a", "ok")], NOW)

    levels = (red.level, amber.level, stopped.level, green.level)
    assert levels == ("red", "amber", "amber", "green")
    assert "without a record" in stopped.reason and "k" in stopped.reason
    assert "b" in red.reason and "ErpUnavailable" in red.reason
    assert "idle" in amber.reason


def test_dead_letters_drift_breaker_and_health_levels() -> None:
    assert operations_status.dead_letters_status(_counts(orders=0)).level == "green"
    waiting = operations_status.dead_letters_status(_counts(orders=3, selftest=0))
    assert (waiting.level, waiting.reason) == ("amber", "waiting: orders 3")
    assert operations_status.dead_letters_status(None).level == "red"
    assert operations_status.drift_status([]).level == "amber"
    assert operations_status.drift_status([_drift(drifted=4, largest="7")]).level == "amber"
    assert operations_status.drift_status([_drift("failed")]).level == "red"
    assert operations_status.drift_status([_drift(), _drift(drifted=9)]).level == "green"
    assert operations_status.erp_status("open").level == "red"
    assert operations_status.erp_status("half_open").level == "amber"
    assert operations_status.erp_status("closed").level == "green"
    down = operations_status.health_status([("tables", "ok", ""), ("serviceBus", "down", "x")])
    assert (down.level, down.reason) == ("red", "down: serviceBus (x)")


def test_stale_watermarks_are_amber() -> None:
    fresh = operations_status.watermarks_status([("prices", NOW - timedelta(minutes=3))], NOW)
    stale = operations_status.watermarks_status(
        [("prices", NOW - timedelta(minutes=3)), ("content", NOW - timedelta(days=3))], NOW
    )
    none = operations_status.watermarks_status([("prices:x", None)], NOW)

    assert (fresh.level, stale.level, none.level) == ("green", "amber", "amber")
    assert "content" in stale.reason and "prices" not in stale.reason


def test_an_unreadable_section_makes_its_area_red() -> None:
    found = operations_status.assess(
        now=NOW,
        timers=[],
        watermarks=[],
        dead_letters=_counts(orders=0),
        drift=[],
        breaker_state="closed",
        dependencies=[("tables", "ok", "")],
        section_errors={"timers": "ServiceRequestError"},
    )

    by_area = {s.area: s for s in found}
    assert by_area["timers"].level == "red"
    assert "ServiceRequestError" in by_area["timers"].reason
    assert by_area["erp"].level == "green"


def _overview(
    erp: operations.ErpView | None = None, **extra: object
) -> operations.OperationsOverview:
    erp = erp or operations.ErpView(breaker_state="open", counters={"requestsSent": 3})
    hostile = "<script>alert(1)</script>"
    counts = dead_letters.DeadLetterCounts(
        entities=[
            dead_letters.DeadLetterCount(
                entity="orders",
                kind="queue",
                count=1,
                display="1",
                messages=[
                    dead_letters.DeadLetterItem(
                        message_id=hostile,
                        reason='Bad"Reason',
                        description="<b>x</b>",
                        enqueued_at=NOW,
                        delivery_count=1,
                    )
                ],
            ),
            dead_letters.DeadLetterCount(entity="selftest", kind="queue", count=0, display="0"),
        ],
        total=1,
        checked_at=NOW,
    )
    return operations.OperationsOverview(
        generated_at=NOW,
        status=[operations_status.erp_status("open")],
        timers=[_timer(hostile, "failed", error=hostile)],
        dead_letters=counts,
        drift=[_drift(drifted=2, largest="5"), _drift()],
        erp=erp,
        extra_sections=[
            operations.ExtraSection(
                title="Accuracy <rate>", rows=[operations.KeyValue(key="k&", value="<v>")]
            )
        ],
        **extra,  # type: ignore[arg-type]
    )


def test_the_page_escapes_every_value_and_offers_replay_only_where_needed() -> None:
    page = render_page(_overview(), key='adm"in&key', flash="<flash>")

    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Bad&quot;Reason" in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "Accuracy &lt;rate&gt;" in page and "k&amp;" in page and "&lt;v&gt;" in page
    assert "&lt;flash&gt;" in page
    # The admin key travels in the form action, URL-encoded and attribute-escaped.
    assert 'action="deadletters/orders/replay?limit=100&amp;code=adm%22in%26key"' in page
    assert page.count('<form method="post"') == 1  # selftest has nothing to replay
    assert 'id="breaker-state">open<' in page
    assert "<link" not in page and "<script" not in page and "http" not in page


def test_drift_chart_draws_one_bar_per_run_oldest_first() -> None:
    svg = drift_chart([_drift(drifted=8), _drift(drifted=0), _drift("failed")])

    assert svg.startswith("<svg") and svg.count("<rect") == 3
    labels = [part.split(">")[1].split("<")[0] for part in svg.split("<text")[1:]]
    assert labels == ["0", "0", "8"]
    assert drift_chart([]).startswith("<p")


def test_overview_json_uses_camel_case_and_decimal_strings() -> None:
    body = json.loads(_overview().model_dump_json(by_alias=True))

    assert body["erp"]["breakerState"] == "open"
    assert body["drift"][0]["largestDrift"] == "5"
    assert body["deadLetters"]["entities"][0]["messages"][0]["messageId"].startswith("<script")
    assert body["extraSections"][0]["title"] == "Accuracy <rate>"


def _dead(message_id: str, sequence: int, minute: int = 0) -> DeadLetteredMessage:
    return DeadLetteredMessage(
        message_id=message_id,
        sequence_number=sequence,
        reason="r",
        description="d",
        enqueued_at=NOW + timedelta(minutes=minute),
        delivery_count=1,
        subject=None,
        correlation_id=None,
    )


def test_replay_ids_are_new_per_dead_letter_and_stable_when_repeated() -> None:
    first = dead_letters.replay_message_id(_dead("order-1", 5))

    assert first.startswith("order-1~replay-") and first != "order-1"
    assert dead_letters.replay_message_id(_dead("order-1", 5)) == first
    assert dead_letters.replay_message_id(_dead("order-1", 6)) != first
    # A replayed copy dead-lettered again keeps its root id instead of growing a chain.
    again = dead_letters.replay_message_id(_dead(first, 9, minute=5))
    assert again.startswith("order-1~replay-") and again.count("~replay-") == 1
    assert again != first
    assert len(dead_letters.replay_message_id(_dead("x" * 128, 1))) <= 128
    plan = dead_letters.copy_plan(_dead(first, 9), NOW)
    assert plan.properties["replayOf"] == "order-1"


def test_dead_letter_sources_are_the_topologys_queues_and_subscriptions() -> None:
    topology = json.loads((ROOT / "infra" / "servicebus-topology.json").read_text())
    (namespace,) = topology["UserConfig"]["Namespaces"]
    expected = {queue["Name"] for queue in namespace["Queues"]} | {
        f"{topic['Name']}:{sub['Name']}"
        for topic in namespace["Topics"]
        for sub in topic["Subscriptions"]
    }

    assert set(dead_letters.DEAD_LETTER_SOURCES) == expected
    assert len(dead_letters.DEAD_LETTER_SOURCES) == len(expected)


def _counters(sent: int, state: BreakerState = BreakerState.CLOSED) -> ErpCounters:
    return ErpCounters(sent, 0, 0, 0, 0, 0, 0, 0, state, 0)


def test_the_erp_section_lists_each_principal_when_several_book_orders() -> None:
    principals = [("default", _counters(5)), ("app-<2>", _counters(9, BreakerState.OPEN))]
    view = operations.erp_view(principals[0][1], principals)

    assert view.counters["requestsSent"] == 5 and view.breaker_state == "closed"
    assert [(p.principal, p.breaker_state) for p in view.principals] == [
        ("default", "closed"),
        ("app-<2>", "open"),
    ]
    body = json.loads(view.model_dump_json(by_alias=True))
    assert body["principals"][1]["counters"]["requestsSent"] == 9
    page = render_page(_overview(erp=view), key="k", flash="")
    assert '<tr data-principal="app-&lt;2&gt;"><td>app-&lt;2&gt;</td><td>open</td>' in page
    assert '<td class="num">9</td>' in page
    # One principal: the section stays as it was.
    alone = operations.erp_view(_counters(5), principals[:1])
    assert alone.principals == []
    assert "data-principal" not in render_page(_overview(erp=alone), key="k", flash="")


def test_a_booking_principals_open_breaker_makes_the_erp_area_amber() -> None:
    stopped = operations_status.erp_status("closed", [("app-2", "open"), ("app-3", "closed")])
    assert stopped.level == "amber" and "app-2" in stopped.reason and "app-3" not in stopped.reason
    # The default principal's own breaker still decides first.
    assert operations_status.erp_status("open", [("app-2", "open")]).level == "red"
    assert operations_status.erp_status("closed", [("app-2", "half_open")]).level == "green"
