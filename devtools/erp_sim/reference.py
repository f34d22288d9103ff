"""Fixed reference data of the demo company: ids, currencies, locations, codes.

These are constants rather than generated values so external suites can rely on them
(the company id, the location codes, the local currency) whatever the seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

COMPANY_ID = "7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20"
COMPANY_NAME = "CRONUS Demo"
SYSTEM_VERSION = "25.0.23364.24510"

# The local currency. Business Central stores it as a blank currency code; the standard
# API translates blank to this code, custom pages (price list lines) keep the blank.
LOCAL_CURRENCY = "USD"

# Business Central's maximum server page size.
MAX_PAGE_SIZE = 20_000

# How long a webhook subscription lives before it must be renewed.
SUBSCRIPTION_LIFETIME_DAYS = 3

# Business Central writes an empty date as this value.
BLANK_DATE = "0001-01-01"

# Business Central's OData writes the blank member of an enum (customer "blocked") like this.
BLANK_ENUM = "_x0020_"


@dataclass(frozen=True)
class Currency:
    """Rounding precisions and the rate to the local currency (LCY per one unit)."""

    code: str
    amount_precision: Decimal
    unit_amount_precision: Decimal
    lcy_per_unit: Decimal


CURRENCIES: dict[str, Currency] = {
    "USD": Currency("USD", Decimal("0.01"), Decimal("0.00001"), Decimal("1")),
    "EUR": Currency("EUR", Decimal("0.01"), Decimal("0.00001"), Decimal("1.08")),
    "JPY": Currency("JPY", Decimal("1"), Decimal("0.01"), Decimal("0.0067")),
    # Three decimals (fils): amounts round to 0.001.
    "KWD": Currency("KWD", Decimal("0.001"), Decimal("0.00001"), Decimal("3.25")),
}

# Added after the demo data was first generated: their rows come from a generator of their
# own, so every existing seed keeps producing exactly the data it did before.
LATER_CURRENCIES = frozenset({"KWD"})

CURRENCY_IDS: dict[str, str] = {
    "USD": "00000000-0000-0000-0000-000000000000",  # BC's empty GUID stands for LCY
    "EUR": "5b0a9c62-7a3e-4f0e-9d2c-3e1f00000e01",
    "JPY": "5b0a9c62-7a3e-4f0e-9d2c-3e1f00000e02",
    "KWD": "5b0a9c62-7a3e-4f0e-9d2c-3e1f00000e03",
}


@dataclass(frozen=True)
class Location:
    id: str
    code: str
    display_name: str


LOCATIONS: tuple[Location, ...] = (
    Location("a1e0c6d4-1f2b-4c3d-8e9f-000000000001", "MAIN", "Main Warehouse"),
    Location("a1e0c6d4-1f2b-4c3d-8e9f-000000000002", "EAST", "East Distribution Center"),
    Location("a1e0c6d4-1f2b-4c3d-8e9f-000000000003", "WEST", "West Distribution Center"),
)

UNITS_OF_MEASURE: dict[str, str] = {
    "PCS": "c0f1a2b3-0000-4000-8000-0000000000a1",
    "BOX": "c0f1a2b3-0000-4000-8000-0000000000a2",
}

ITEM_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("CHAIR", "Office Chairs"),
    ("DESK", "Desks"),
    ("LAMP", "Lighting"),
    ("STORAGE", "Storage"),
    ("TABLE", "Tables"),
    ("ACCESSORY", "Accessories"),
    ("ELECTRONIC", "Electronics"),
    ("PAPER", "Paper Goods"),
    ("CABLE", "Cables"),
    ("SOFA", "Lounge Seating"),
    ("SHELF", "Shelving"),
    ("TOOL", "Tools"),
)

PAYMENT_TERMS_IDS: tuple[str, ...] = (
    "d4e5f6a7-0000-4000-8000-000000000014",
    "d4e5f6a7-0000-4000-8000-000000000030",
    "d4e5f6a7-0000-4000-8000-000000000060",
)

CUSTOMER_PRICE_GROUPS: tuple[str, ...] = ("RETAIL", "WHOLESALE", "VIP", "EXPORT")
CUSTOMER_DISCOUNT_GROUPS: tuple[str, ...] = ("LARGE", "SMALL", "MEDIUM")


def company_row() -> dict[str, str]:
    """The one demo company as ``companies`` lists it."""
    return {
        "id": COMPANY_ID,
        "systemVersion": SYSTEM_VERSION,
        "timestamp": "0",
        "name": COMPANY_NAME,
        "displayName": COMPANY_NAME,
        "businessProfileId": "",
    }
