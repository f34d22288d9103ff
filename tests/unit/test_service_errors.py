"""The one mapping of service error kinds to problem+json (functions/http.py ``problem_of``)."""

from __future__ import annotations

import json

import pytest

from functions.http import problem_of, problem_response
from shared.services.errors import (
    Conflict,
    NotFound,
    Rejected,
    ServiceError,
    Unavailable,
    UnknownCustomer,
)


def _render(error: ServiceError) -> tuple[int, dict[str, str], dict[str, object]]:
    response = problem_response(problem_of(error))
    assert response.mimetype == "application/problem+json"
    return response.status_code, dict(response.headers), json.loads(response.get_body())


def test_not_found_is_404_with_the_services_words() -> None:
    status, headers, body = _render(UnknownCustomer("C1"))
    assert (status, headers.get("Retry-After")) == (404, None)
    assert body == {
        "type": "about:blank",
        "title": "Unknown customer",
        "status": 404,
        "detail": "no customer C1",
    }


def test_conflict_is_409_with_retry_after_only_when_waiting_helps() -> None:
    status, headers, _ = _render(Conflict("Reused", "first body differs"))
    assert status == 409 and "Retry-After" not in headers
    status, headers, _ = _render(Conflict("Busy", "still running", 2))
    assert (status, headers["Retry-After"]) == (409, "2")


def test_unavailable_is_503_with_retry_after() -> None:
    status, headers, body = _render(Unavailable("Down", "the ERP is down", 30))
    assert (status, headers["Retry-After"], body["detail"]) == (503, "30", "the ERP is down")


def test_rejected_is_422_listing_its_violations() -> None:
    violation = {"rule": "unknown-currency", "field": "currency", "detail": "XYZ is not sold"}
    status, _, body = _render(Rejected("Invalid request", "the currency is not sold", [violation]))
    assert (status, body["violations"]) == (422, [violation])


def test_a_kind_without_an_http_form_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        problem_of(ServiceError("t", "d"))
    assert isinstance(UnknownCustomer("C1"), NotFound)
