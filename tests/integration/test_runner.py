"""The local Functions host runner serving sample apps: HTTP, admin routes, settings, timers.

Each test starts its own runner in-process on a free port (or, for the CLI, a subprocess).
The Service Bus side is in test_runner_servicebus.py.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from devtools.runner import AppIndexError, AppLoadError, Runner, RunnerOptions

ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "runner_apps"
FUNCTION_KEY = "test-function-key"
ADMIN_KEY = "test-admin-key"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def keys_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_FUNCTION_KEY", FUNCTION_KEY)
    monkeypatch.setenv("LOCAL_ADMIN_KEY", ADMIN_KEY)


def _options(app: str, **overrides: object) -> RunnerOptions:
    settings: dict[str, object] = {
        "app": app,
        "port": 0,
        "app_dir": APPS,
        "use_settings_file": False,
        "shutdown_grace": 3.0,
    }
    settings.update(overrides)
    return RunnerOptions(**settings)  # type: ignore[arg-type]


@pytest.fixture
async def http_runner(keys_env: None) -> AsyncIterator[Runner]:
    async with Runner(_options("runner_http_app:app")) as runner:
        yield runner


@pytest.fixture
async def client(http_runner: Runner) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=http_runner.url, timeout=10) as http:
        yield http


FN = {"x-functions-key": FUNCTION_KEY}
ADMIN = {"x-functions-key": ADMIN_KEY}


# -- HTTP routes ---------------------------------------------------------------------------


async def test_route_template_values_query_and_headers_reach_the_function(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        "/api/items/SKU%20A-1", params={"q": "blue", "page": "2"}, headers={**FN, "x-probe": "p1"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["route"] == {"sku": "SKU A-1"}
    assert body["params"] == {"q": "blue", "page": "2"}
    assert body["method"] == "GET"
    assert body["header"] == "p1"
    assert body["url"].startswith(f"{client.base_url}/api/items/SKU%20A-1?")


async def test_literal_route_wins_over_parameter_and_constraints_are_enforced(
    client: httpx.AsyncClient,
) -> None:
    by_id = await client.get("/api/orders/42", headers=FN)
    search = await client.get("/api/orders/search", headers=FN)
    not_an_int = await client.get("/api/orders/forty-two", headers=FN)
    assert by_id.json() == {"function": "get_order", "orderId": "42"}
    assert search.json() == {"function": "search_orders"}
    assert not_an_int.status_code == 404


async def test_optional_route_parameter_may_be_left_out(client: httpx.AsyncClient) -> None:
    without = await client.get("/api/files")
    with_name = await client.get("/api/files/report.pdf")
    assert without.json() == {"name": None}
    assert with_name.json() == {"name": "report.pdf"}


async def test_a_url_longer_than_the_host_accepts_is_414(client: httpx.AsyncClient) -> None:
    just_fits = await client.get("/api/items/SKU1", params={"q": "x" * 8000}, headers=FN)
    too_long = await client.get("/api/items/SKU1", params={"q": "x" * 9000}, headers=FN)
    assert just_fits.status_code == 200
    assert too_long.status_code == 414
    assert too_long.headers["content-type"].startswith("application/problem+json")


async def test_header_fields_beyond_kestrels_limits_are_431(client: httpx.AsyncClient) -> None:
    """Kestrel's defaults (KestrelServerLimits, learn.microsoft.com): at most 100 header fields
    and 32 KiB of them, else 431 before any function runs."""
    many = {f"x-h{n}": "v" for n in range(100)}
    just_fits = await client.get("/api/items/SKU1", headers={**FN, "x-probe": "p" * 30_000})
    too_long = await client.get("/api/items/SKU1", headers={**FN, "x-probe": "p" * 33_000})
    too_many = await client.get("/api/items/SKU1", headers={**FN, **many})
    assert just_fits.status_code == 200
    assert too_long.status_code == 431
    assert too_many.status_code == 431
    assert "100" in too_many.json()["detail"]
    assert too_long.headers["content-type"].startswith("application/problem+json")


async def test_unknown_route_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/no/such/route", headers=FN)).status_code == 404
    assert (await client.get("/api", headers=FN)).status_code == 404
    # The host's landing page answers at the root, with no key.
    assert (await client.get("/")).status_code == 200
    # The route prefix is part of the address: without it nothing matches.
    assert (await client.get("/items/SKU1", headers=FN)).status_code == 404


async def test_missing_or_wrong_key_is_401(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/items/SKU1")
    wrong = await client.get("/api/items/SKU1", headers={"x-functions-key": "nope"})
    wrong_code = await client.get("/api/items/SKU1", params={"code": "nope"})
    assert (missing.status_code, wrong.status_code, wrong_code.status_code) == (401, 401, 401)


async def test_function_key_in_code_query_parameter_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/items/SKU1", params={"code": FUNCTION_KEY})
    assert response.status_code == 200
    assert response.json()["route"] == {"sku": "SKU1"}


async def test_admin_key_opens_function_routes_but_function_key_not_admin_routes(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/api/items/SKU1", headers=ADMIN)).status_code == 200
    assert (await client.post("/api/ops/reset", headers=FN)).status_code == 401
    admin_only = await client.post("/api/ops/reset", headers=ADMIN)
    assert admin_only.status_code == 200
    assert admin_only.json() == {"reset": True}


async def test_wrong_method_is_405_with_allow_header(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/items/SKU1", headers=FN)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


async def test_anonymous_route_needs_no_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/public/ping")
    assert response.status_code == 200
    assert response.text == "pong"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


async def test_exception_gives_500_without_traceback_and_logs_it(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devtools.runner")
    response = await client.get("/api/boom", headers=FN)
    assert response.status_code == 500
    assert "secret-internal-detail" not in response.text
    assert "Traceback" not in response.text
    # The worker sends the exception's stack trace to the host as text, which the host logs.
    failures = [
        r for r in caplog.records if r.levelno == logging.ERROR and "Traceback" in r.getMessage()
    ]
    assert failures, "the traceback must reach the log"
    assert "secret-internal-detail" in caplog.text
    assert failures[0].function_name == "boom"  # type: ignore[attr-defined]
    assert failures[0].invocation_id in response.text  # type: ignore[attr-defined]


async def test_http_response_is_returned_faithfully(client: httpx.AsyncClient) -> None:
    payload = b"<order id='1'/>"
    response = await client.post(
        "/api/echo", content=payload, headers={**FN, "content-type": "application/xml"}
    )
    assert response.status_code == 201
    assert response.content == payload
    assert response.headers["x-echo"] == "yes"
    assert response.headers["content-type"] == "application/xml"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]


async def test_function_returning_none_fails_as_the_worker_cannot_encode_it(
    client: httpx.AsyncClient,
) -> None:
    # The worker's HTTP converter has no encoding for None: the invocation fails, 500.
    response = await client.delete("/api/nothing", headers=FN)
    assert response.status_code == 500


async def test_an_answer_later_than_the_host_limit_is_a_504(keys_env: None) -> None:
    # The host's limit is 230 s; the option shrinks it so the test takes a second.
    options = _options("runner_http_app:app", http_response_limit=0.5)
    async with (
        Runner(options) as runner,
        httpx.AsyncClient(base_url=runner.url, timeout=10) as http,
    ):
        late = await http.get("/api/slow", params={"seconds": "1.5"}, headers=FN)
        quick = await http.get("/api/slow", params={"seconds": "0"}, headers=FN)
    assert late.status_code == 504
    assert late.headers["content-type"].startswith("application/problem+json")
    assert quick.status_code == 200 and quick.text == "finally"


async def test_async_function_runs_on_the_loop(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/async/hello", params={"name": "runner"}, headers=FN)
    assert response.json() == {"hello": "runner"}


async def test_context_carries_invocation_and_trace_parent_and_logs_are_stamped(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    traced = await client.get("/api/context", headers={**FN, "traceparent": TRACEPARENT})
    untraced = await client.get("/api/context", headers=FN)
    body = traced.json()
    assert uuid.UUID(body["invocation_id"])
    assert body["function_name"] == "with_context"
    assert body["function_directory"] == str(APPS)
    assert body["traceparent"] == TRACEPARENT
    fresh = untraced.json()["traceparent"]
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", fresh)
    assert fresh != TRACEPARENT
    inside = [r for r in caplog.records if r.getMessage() == "inside with_context"]
    assert inside[0].invocation_id == body["invocation_id"]  # type: ignore[attr-defined]
    assert inside[0].function_name == "with_context"  # type: ignore[attr-defined]


# -- admin routes --------------------------------------------------------------------------


async def test_admin_functions_lists_names_triggers_and_bindings(client: httpx.AsyncClient) -> None:
    assert (await client.get("/admin/functions")).status_code == 401
    assert (await client.get("/admin/functions", headers=FN)).status_code == 401
    response = await client.get("/admin/functions", headers=ADMIN)
    assert response.status_code == 200
    listed = {f["name"]: f for f in response.json()}
    assert {"get_item", "ping", "boom", "with_context"} <= set(listed)
    item = listed["get_item"]
    assert item["triggerType"] == "httpTrigger"
    assert {b["type"] for b in item["bindings"]} == {"httpTrigger", "http"}
    assert item["invoke_url_template"] == f"{client.base_url}/api/items/{{sku}}"


async def test_admin_host_status_and_unknown_function(client: httpx.AsyncClient) -> None:
    status = await client.get("/admin/host/status", headers=ADMIN)
    assert status.status_code == 200
    assert status.json()["state"] == "Running"
    assert (await client.get("/admin/host/status")).status_code == 401
    unknown = await client.post("/admin/functions/no_such_function", headers=ADMIN, json={})
    assert unknown.status_code == 404
    http_function = await client.post("/admin/functions/get_item", headers=ADMIN, json={})
    assert http_function.status_code == 400


# -- settings and indexing -----------------------------------------------------------------


async def test_settings_file_is_loaded_without_overriding_the_environment(
    tmp_path: Path, keys_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tmp_path / "local.settings.json"
    values = {"RUNNER_T_FROM_FILE": "file", "RUNNER_T_OVERRIDDEN": "file", "RUNNER_T_NUMBER": 3}
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    monkeypatch.setenv("RUNNER_T_OVERRIDDEN", "environment")
    monkeypatch.delenv("RUNNER_T_FROM_FILE", raising=False)
    options = _options("runner_http_app:app", use_settings_file=True, settings_path=settings)
    async with Runner(options) as runner, httpx.AsyncClient(base_url=runner.url) as http:
        read = {
            name: (await http.get(f"/api/settings/{name}", headers=FN)).json()["value"]
            for name in values
        }
    assert read == {
        "RUNNER_T_FROM_FILE": "file",
        "RUNNER_T_OVERRIDDEN": "environment",
        "RUNNER_T_NUMBER": "3",
    }
    # What the runner added is taken back on stop, so in-process runs do not leak settings.
    assert "RUNNER_T_FROM_FILE" not in os.environ
    assert os.environ["RUNNER_T_OVERRIDDEN"] == "environment"


async def test_disabled_function_is_not_served(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AzureWebJobs.switched.Disabled", "true")
    async with (
        Runner(_options("runner_disabled_app:app")) as runner,
        httpx.AsyncClient(base_url=runner.url) as http,
    ):
        assert (await http.get("/api/switched")).status_code == 404
        assert (await http.get("/api/always")).text == "on"


@pytest.mark.parametrize(
    ("target", "error", "mentions"),
    [
        ("dup_names:app", AppIndexError, "twin"),
        ("dup_routes:app", AppIndexError, "orders/{orderId}"),
        ("unresolved_schedule:app", AppIndexError, "NO_SUCH_SCHEDULE_SETTING"),
        ("timespan_schedule:app", AppIndexError, "NCRONTAB expressions only"),
        ("reserved_route:app", AppIndexError, "reserves"),
        ("bad_function_name:app", AppIndexError, "1st_report"),
        # Microsoft's worker itself refuses these; its own message reaches the caller.
        ("list_annotation:app", AppIndexError, "binding msgs has invalid non-type annotation"),
        ("unbound_parameter:app", AppIndexError, "{'greeting'}"),
        ("not_an_app:app", AppIndexError, "Could not find top level function app instances"),
        ("no_such_module_anywhere:app", AppLoadError, "no_such_module_anywhere"),
    ],
)
async def test_runner_refuses_apps_it_cannot_serve(
    target: str, error: type[Exception], mentions: str
) -> None:
    runner = Runner(_options(target, app_dir=APPS / "bad"))
    with pytest.raises(error, match=re.escape(mentions)):
        await runner.start()
    with pytest.raises(Exception, match="not started"):
        _ = runner.url


# -- timers --------------------------------------------------------------------------------


async def test_a_monitored_timer_missed_while_the_host_was_down_runs_at_once_past_due(
    keys_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TICK_SCHEDULE", "0 0 0 1 1 *")
    monkeypatch.setenv("GUARDED_SCHEDULE", "0 0 0 1 1 *")
    # The status a host kept before it stopped: the guarded timer was due an hour ago.
    due = datetime.now(UTC) - timedelta(hours=1)
    (tmp_path / "guarded.json").write_text(
        json.dumps({"Last": None, "Next": due.isoformat(), "LastUpdated": due.isoformat()})
    )
    options = _options("runner_timer_app:app", timer_status_dir=tmp_path)
    async with Runner(options) as runner:
        runs = await runner.wait_for_invocations("guarded", 1, timeout=10)
        module = runner.module
    assert runs[0].succeeded and "past due" in runs[0].reason
    assert module is not None and (False, True) in module.guarded_runs
    # Exactly one catch-up run, and the status now points at the next occurrence.
    assert len([r for r in runner.invocations if r.function_name == "guarded"]) == 1
    saved = json.loads((tmp_path / "guarded.json").read_text())
    assert datetime.fromisoformat(saved["Next"]) > datetime.now(UTC)
    # A timer with no stored status is not past due: it only gets its status written.
    assert json.loads((tmp_path / "yearly.json").read_text())["Last"] is None


@pytest.fixture
def timer_env(keys_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICK_SCHEDULE", "*/1 * * * * *")
    monkeypatch.setenv("GUARDED_SCHEDULE", "0 0 0 1 1 *")


async def test_timer_schedule_comes_from_a_setting_and_fires_every_second(timer_env: None) -> None:
    async with Runner(_options("runner_timer_app:app")) as runner:
        runs = await runner.wait_for_invocations("every_tick", 3, timeout=15)
        async with httpx.AsyncClient(base_url=runner.url) as http:
            listed = (await http.get("/admin/functions", headers=ADMIN)).json()
        module = runner.module
    assert all(r.succeeded for r in runs)
    assert {f["name"]: f["schedule"] for f in listed}["every_tick"] == "*/1 * * * * *"
    assert module is not None
    seconds = [t.replace(microsecond=0) for t in module.ticks[:3]]
    assert len(set(seconds)) == 3, "one run per occurrence"


async def test_timer_runs_on_demand_through_the_admin_api(timer_env: None) -> None:
    async with Runner(_options("runner_timer_app:app")) as runner:
        async with httpx.AsyncClient(base_url=runner.url) as http:
            accepted = await http.post("/admin/functions/yearly", headers=ADMIN, json={"input": ""})
            unauthorised = await http.post("/admin/functions/yearly", headers=FN, json={})
        runs = await runner.wait_for_invocations("yearly", 1, timeout=10)
        module = runner.module
    assert accepted.status_code == 202
    assert unauthorised.status_code == 401
    assert runs[0].succeeded
    assert module is not None and module.manual_runs == [False]


async def test_timer_runs_never_overlap_and_a_late_run_is_past_due(
    timer_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUARDED_SCHEDULE", "*/1 * * * * *")
    async with Runner(_options("runner_timer_app:app")) as runner:
        async with httpx.AsyncClient(base_url=runner.url) as http:
            # The on-demand run holds the timer for 2.5 s, so the next occurrence must wait.
            accepted = await http.post("/admin/functions/guarded", headers=ADMIN)
        await runner.wait_for_invocations(
            "guarded", 1, timeout=10, where=lambda r: "programmatically" in r.reason
        )
        await runner.wait_for_invocations("guarded", 3, timeout=10)
        module = runner.module
    assert accepted.status_code == 202
    assert module is not None
    assert module.max_active == 1
    on_demand_index = [on_demand for on_demand, _ in module.guarded_runs].index(True)
    waited = module.guarded_runs[on_demand_index + 1]
    assert waited == (False, True), "the scheduled run that waited for the lock is past due"


# -- the command line ----------------------------------------------------------------------


@pytest.fixture
def cli_app(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "tiny_function_app.py").write_text(
        "import azure.functions as func\n"
        "app = func.FunctionApp()\n"
        "@app.route(route='hello/{name}', methods=['GET'])\n"
        "def hello(req: func.HttpRequest) -> str:\n"
        "    return 'hello ' + req.route_params['name']\n"
    )
    (tmp_path / "local.settings.sample.json").write_text(
        json.dumps({"Values": {"LOCAL_FUNCTION_KEY": "sample-fn", "LOCAL_ADMIN_KEY": "sample-ad"}})
    )
    (tmp_path / "host.json").write_text(
        json.dumps({"version": "2.0", "extensions": {"http": {"routePrefix": "v1"}}})
    )
    yield tmp_path


def test_command_line_prints_ready_serves_and_stops_on_sigterm(cli_app: Path) -> None:
    port = _free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in {"LOCAL_FUNCTION_KEY", "LOCAL_ADMIN_KEY"}
    }
    env["PYTHONPATH"] = str(ROOT)
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "devtools.runner", "--app", "tiny_function_app:app"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        cwd=cli_app,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline().strip()
        assert ready == f"READY http://127.0.0.1:{port}", process.stderr.read() if not ready else ""
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as http:
            served = http.get("/v1/hello/ana", headers={"x-functions-key": "sample-fn"})
            unauthorised = http.get("/v1/hello/ana")
            old_prefix = http.get("/api/hello/ana", headers={"x-functions-key": "sample-fn"})
        assert served.status_code == 200 and served.text == "hello ana"
        assert unauthorised.status_code == 401
        assert old_prefix.status_code == 404
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_command_line_exits_2_with_a_reason_when_the_app_cannot_start(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "devtools.runner"),
            *("--app", "list_annotation:app", "--port", str(_free_port())),
        ],
        cwd=APPS / "bad",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    assert "binding msgs has invalid non-type annotation" in completed.stderr
    assert "READY" not in completed.stdout
