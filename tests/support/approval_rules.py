"""The six approvable rules end to end (issue 19): for each, a customer, an item and an order
that breaks that rule and no other on a private stack, and the probes that show what an order
holds (stock availability, pending credit) and what the ERP booked.

Used by ``tests/e2e/test_order_approval_rules_hold.py`` (the policy at ``hold``) and
``tests/e2e/test_order_approval_rules_reject.py`` (at ``reject``); each module has its own stack.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, get_args
from urllib.parse import quote

import httpx
from azure.servicebus import ServiceBusClient

from devtools.erp_sim.testing import standard_api
from shared.config.policy import ApprovableRule
from tests.support.stock_setup import count_stock, set_financials
from tests.waiting import eventually

# Every rule intake may route to a person: a rule added to the policy is tested here too.
RULES: tuple[str, ...] = get_args(ApprovableRule)
# Who orders for each rule (simulator fixtures), one customer each so that no rule's booked
# order leaves pending credit (remembered until the ERP's figures show it) in another's way:
# C00005 has a credit limit, C00009 an overdue balance, C00003 is blocked for shipping, C00007
# has the policy's quantity limit of 5.
CUSTOMERS = {
    "credit-over-limit": "C00005",
    "credit-overdue": "C00009",
    "price-mismatch": "C00001",
    "insufficient-stock": "C00008",
    "customer-blocked": "C00003",
    "quantity-over-threshold": "C00007",
}
QUANTITY_LIMIT = 5


def policy(action: str) -> dict[str, Any]:
    """Every rule at ``action``, a per-customer quantity limit for the quantity rule."""
    return {
        "orders": {
            "approvals": {
                "holdFor": "PT1H",
                "rules": dict.fromkeys(RULES, action),
                "quantityLimits": {"customers": {CUSTOMERS["quantity-over-threshold"]: 5}},
            }
        }
    }


# The overdue rule must bite: a tolerance below the overdue amount set for C00009, while every
# other customer's overdue amount is set to zero.
RUNNER_ENV = {"CREDIT_OVERDUE_TOLERANCE": "100"}


@dataclass
class Case:
    """One order breaking one rule: what it orders and, for an approval to book, what has to
    change in the ERP first (``unbreak``)."""

    rule: str
    customer: str
    sku: str
    lines: list[dict[str, Any]]
    unbreak: Callable[[], None] = field(default=lambda: None)


class Probe:
    """The stack's HTTP API, its bus and its ERP simulator, seen from a test."""

    def __init__(
        self, api: httpx.Client, admin: dict[str, str], bus: ServiceBusClient, erp_url: str
    ) -> None:
        self.api, self.admin, self.bus, self.erp_url = api, admin, bus, erp_url
        self._used: set[str] = set()

    # ---- what is held --------------------------------------------------------------------

    def stock(self, sku: str) -> tuple[Decimal, Decimal]:
        """(available to sell, this product's pending holds) over every location."""
        response = self.api.get(f"/api/availability?skus={quote(sku, safe='')}&channel=web")
        assert response.status_code == 200, response.text
        item = response.json()["items"][0]
        held = sum((Decimal(line["pendingHolds"]) for line in item["locations"]), Decimal(0))
        return Decimal(item["available"]), held

    def pending_credit(self, customer: str) -> Decimal:
        answer = self.api.post("/api/credit/check", json={"customerId": customer, "amount": "0"})
        assert answer.status_code == 200, answer.text
        return Decimal(answer.json()["pendingAmount"])

    def erp_orders(self, order_id: str) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{standard_api(self.erp_url)}/salesOrders",
            params={"$filter": f"externalDocumentNumber eq '{order_id}'"},
            timeout=10,
        )
        response.raise_for_status()
        return list(response.json()["value"])

    def status(self, order_id: str) -> str:
        return str(self.api.get(f"/api/orders/{order_id}").json()["status"])

    def rejected_at_approval(self) -> int:
        """Orders rejected at approval (or expired) in the business impact report's totals."""
        report = self.api.get("/api/ops/impact?days=2", headers=self.admin)
        assert report.status_code == 200, report.text
        return int(report.json()["impact"]["totals"]["rejectedAtApproval"])

    # ---- acting ----------------------------------------------------------------------------

    def submit(self, case: Case) -> httpx.Response:
        body = {
            "customerId": case.customer,
            "externalOrderId": f"shop-{uuid.uuid4().hex[:8]}",
            "channel": "web",
            "lines": case.lines,
        }
        return self.api.post(
            "/api/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
        )

    def sweep(self) -> None:
        """Run the ``orders_sweep`` timer on demand and wait until that run has ended well:
        the admin call answers 202 at once, so what a test checks after it would otherwise
        race the run (the runner never overlaps two runs of one timer)."""
        before = (self._last_sweep() or {}).get("runId")
        answer = self.api.post(
            "/admin/functions/orders_sweep", json={"input": ""}, headers=self.admin
        )
        assert answer.status_code == 202, answer.text

        def ended() -> dict[str, Any] | None:
            last = self._last_sweep()
            if last is None or last["runId"] == before or last["result"] == "running":
                return None
            return last

        run = eventually(ended, 60)
        assert run["result"] == "ok", run

    def _last_sweep(self) -> dict[str, Any] | None:
        """The newest recorded run of ``orders_sweep`` (from the operations overview)."""
        overview = self.api.get("/api/ops/overview", headers=self.admin)
        assert overview.status_code == 200, overview.text
        (sweep,) = [t for t in overview.json()["timers"] if t["name"] == "orders_sweep"]
        last = sweep["lastRun"]
        return None if last is None else dict(last)

    def decide(self, order_id: str, verb: str) -> httpx.Response:
        return self.api.post(
            f"/api/ops/orders/{order_id}/{verb}",
            json={"approver": "Fran", "reason": f"{verb} in e2e"},
            headers=self.admin,
        )

    # ---- setting a case up ------------------------------------------------------------------

    def publish_prices(self) -> None:
        answer = self.api.post(
            "/admin/functions/price_publish_full", json={"input": ""}, headers=self.admin
        )
        assert answer.status_code == 202
        body = {"customerId": "C00001", "lines": [{"sku": "IT-000001", "quantity": 1}]}
        eventually(lambda: self.api.post("/api/prices/quote", json=body).status_code == 200, 60)

    def case(self, rule: str) -> Case:
        """An order of ``rule``'s customer that breaks that rule alone."""
        customer = CUSTOMERS[rule]
        self._financials(customer, balance="-100000")
        sku, price = self._sellable_item()
        self._count(sku, "MAIN", 50)
        line: dict[str, Any] = {"sku": sku, "quantity": 2}
        unbreak: Callable[[], None] = lambda: None  # noqa: E731
        if rule == "credit-over-limit":
            limit = self._credit_limit(customer)
            assert limit > 0, "the credit fixture customer has no limit"
            self._financials(customer, balance=str(limit - Decimal("0.01")))
        elif rule == "credit-overdue":
            self._financials(customer, balance="0", overdue="500")
        elif rule == "price-mismatch":
            line["expectedUnitPrice"] = str(price + 1)
        elif rule == "insufficient-stock":
            self._count(sku, "MAIN", 2)
            available, _ = self.stock(sku)
            line["quantity"] = int(available) + 1
        elif rule == "customer-blocked":
            unbreak = lambda: self._unblock(customer)  # noqa: E731
        elif rule == "quantity-over-threshold":
            line["quantity"] = QUANTITY_LIMIT + 1
        return Case(rule, customer, sku, [line], unbreak)

    def _sellable_item(self) -> tuple[str, Decimal]:
        """A plain item (not one of the simulator's odd fixtures) that has a price."""
        for number in (1, 2, *range(19, 41)):
            sku = f"IT-{number:06d}"
            if sku in self._used:
                continue
            body = {"customerId": "C00001", "lines": [{"sku": sku, "quantity": 1}]}
            answer = self.api.post("/api/prices/quote", json=body)
            if answer.status_code == 200:
                self._used.add(sku)
                return sku, Decimal(answer.json()["lines"][0]["unitPrice"])
        raise AssertionError("no sellable item left in the demo data")

    def _count(self, sku: str, location: str, quantity: int) -> None:
        """A ``counted`` inventory event, then wait until availability shows it."""
        count_stock(self.bus, sku, location, quantity)

        def counted() -> bool:
            response = self.api.get(f"/api/availability?skus={quote(sku, safe='')}&channel=web")
            if response.status_code != 200:
                return False
            lines = response.json()["items"][0]["locations"]
            return any(
                line["location"] == location and Decimal(line["onHand"]) == quantity
                for line in lines
            )

        eventually(counted)

    def _financials(self, customer: str, *, balance: str, overdue: str = "0") -> None:
        set_financials(self.erp_url, customer, balance=balance, overdue=overdue)

    def _credit_limit(self, customer: str) -> Decimal:
        answer = self.api.post("/api/credit/check", json={"customerId": customer, "amount": "0"})
        return Decimal(answer.json()["creditLimit"])

    def _unblock(self, customer: str) -> None:
        """Lift the customer's block in the ERP, as a person in Business Central would."""
        url = f"{standard_api(self.erp_url)}/customers"
        found = httpx.get(url, params={"$filter": f"number eq '{customer}'"}, timeout=10)
        row = found.json()["value"][0]
        httpx.patch(
            f"{url}({row['id']})",
            json={"blocked": "_x0020_"},
            headers={"If-Match": row["@odata.etag"]},
            timeout=10,
        ).raise_for_status()
