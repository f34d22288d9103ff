"""The audit's admin routes on the function app in the local runner (shared session stack).

Only the connectivity layer is run here: it reads, never writes, ERP data, so it is safe on the
shared simulator; the data and logic layers are covered against a private stack in
tests/integration/test_audit_stack.py.
"""

from __future__ import annotations

import httpx


def test_post_runs_the_audit_and_get_returns_it_as_json_and_html(
    runner_url: str, app_keys: dict[str, str]
) -> None:
    admin = {"x-functions-key": app_keys["admin"]}
    with httpx.Client(base_url=runner_url, timeout=120) as client:
        ran = client.post("/api/ops/audit", params={"layers": "connectivity"}, headers=admin)
        assert ran.status_code == 200, ran.text
        report = ran.json()
        assert report["layers"] == ["connectivity"]
        assert report["connectivity"]["latency"]["probes"] == 10
        assert report["passed"] == report["connectivity"]["verdict"]["passed"]
        assert report["data"] is None and report["logic"] is None
        assert "x-correlation-id" in ran.headers

        latest = client.get("/api/ops/audit", headers=admin)
        assert latest.status_code == 200
        assert latest.json()["runId"] == report["runId"]

        page = client.get("/api/ops/audit/report", headers=admin)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert report["runId"] in page.text and "2. Connectivity" in page.text


def test_audit_routes_refuse_bad_input_and_the_function_key(
    runner_url: str, app_keys: dict[str, str]
) -> None:
    with httpx.Client(base_url=runner_url, timeout=30) as client:
        admin = {"x-functions-key": app_keys["admin"]}
        bad = client.post("/api/ops/audit", params={"layers": "everything"}, headers=admin)
        assert bad.status_code == 422
        assert bad.json()["violations"][0]["field"] == "layers"
        too_big = client.post("/api/ops/audit", params={"sampleSize": "100000"}, headers=admin)
        assert too_big.status_code == 422
        function_key = {"x-functions-key": app_keys["function"]}
        assert client.post("/api/ops/audit", headers=function_key).status_code == 401
        assert client.get("/api/ops/audit/report", headers=function_key).status_code == 401
