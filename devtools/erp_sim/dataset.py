"""All entity sets of the demo company plus the few lookups the business rules need."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from devtools.erp_sim.schema import NESTED_ONLY, SPECS
from devtools.erp_sim.stamps import Stamper
from devtools.erp_sim.store import EntitySet, Row

if TYPE_CHECKING:
    from devtools.erp_sim.documents import Commitment


@dataclass
class Fixtures:
    """Deliberately special records, listed so tests need not hunt for them."""

    items: dict[str, str] = field(default_factory=dict)  # role -> item number
    customers: dict[str, str] = field(default_factory=dict)  # role -> customer number
    odd_item_numbers: list[str] = field(default_factory=list)
    malformed_content: dict[str, str] = field(default_factory=dict)  # item number -> defect
    campaigns: dict[str, tuple[str, str]] = field(default_factory=dict)  # code -> window

    def as_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "customers": self.customers,
            "oddItemNumbers": self.odd_item_numbers,
            "malformedContent": self.malformed_content,
            "campaigns": {
                code: {"startingDate": start, "endingDate": end}
                for code, (start, end) in self.campaigns.items()
            },
        }


class Dataset:
    """The company's data. Everything is in plain dicts; rules read it directly."""

    def __init__(self, *, seed: int, anchor: date, stamper: Stamper) -> None:
        self.seed = seed
        self.anchor = anchor
        self.stamper = stamper
        self.sets: dict[str, EntitySet] = {
            name: EntitySet(spec)
            for name, spec in SPECS.items()
            if name not in NESTED_ONLY and name != "subscriptions"
        }
        # Document lines by document id, for salesOrders and salesQuotes alike.
        self.lines: dict[str, list[Row]] = {}
        # Lines of posted shipments and invoices by document id.
        self.posted_lines: dict[str, list[Row]] = {}
        # What each sales order committed (stock, outstanding amount), to undo on delete.
        self.commitments: dict[str, Commitment] = {}
        # item number -> unit of measure code -> quantity per unit (base unit included).
        self.item_units: dict[str, dict[str, Decimal]] = {}
        self.document_counters: dict[str, int] = {"salesOrders": 0, "salesQuotes": 0}
        self.fixtures = Fixtures()

    def __getitem__(self, name: str) -> EntitySet:
        return self.sets[name]

    def item(self, number: str) -> Row | None:
        return self.sets["items"].find_one("number", number)

    def customer(self, number: str) -> Row | None:
        return self.sets["customers"].find_one("number", number)

    def pricing_profile(self, customer_number: str) -> Row | None:
        return self.sets["customerPricingProfiles"].find_one("customerNumber", customer_number)

    def credit_summary(self, customer_number: str) -> Row | None:
        return self.sets["customerCreditSummaries"].find_one("customerNumber", customer_number)

    def financial_detail(self, customer_number: str) -> Row | None:
        return self.sets["customerFinancialDetails"].find_one("number", customer_number)

    def location_by_id(self, location_id: str) -> Row | None:
        return self.sets["locations"].get(location_id)

    def location_by_code(self, code: str) -> Row | None:
        return self.sets["locations"].find_one("code", code)

    def availability(self, item_number: str) -> list[Row]:
        return self.sets["itemAvailabilityByLocation"].find("itemNumber", item_number)

    def price_lines(self, item_number: str) -> list[Row]:
        return self.sets["priceListLines"].find("assetNo", item_number)

    def touch(self, set_name: str, row: Row) -> None:
        """Stamp a changed row (new ETag and time) and note it for delta reads."""
        self.stamper.touch(row)
        entity_set = self.sets[set_name]
        entity_set.mark_changed(row[entity_set.spec.key])

    def counts(self) -> dict[str, int]:
        counts = {name: len(entity_set) for name, entity_set in self.sets.items()}
        counts["salesOrderLines"] = sum(
            len(self.lines.get(row_id, ())) for row_id in self.sets["salesOrders"].rows
        )
        return counts
