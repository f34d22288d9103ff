"""Deterministic demo data: the same seed, sizes and anchor date give the same company.

Sized for 250,000 items, 5,000 customers and about a million price list lines, so the inner
loops avoid per-row overhead: prices are integers in units of 0.00001, timestamps and long
texts come from small pools of shared strings, and every set is loaded and sorted once.

Fixture records sit at fixed positions (see ``ITEM_ROLES`` and ``CUSTOMER_ROLES``) so that
tests find a blocked customer or an item number with ``/`` in it whatever the seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from devtools.erp_sim.dataset import Dataset
from devtools.erp_sim.numbers import json_number
from devtools.erp_sim.reference import (
    BLANK_DATE,
    BLANK_ENUM,
    CURRENCIES,
    CURRENCY_IDS,
    CUSTOMER_DISCOUNT_GROUPS,
    CUSTOMER_PRICE_GROUPS,
    ITEM_CATEGORIES,
    LATER_CURRENCIES,
    LOCAL_CURRENCY,
    LOCATIONS,
    PAYMENT_TERMS_IDS,
    UNITS_OF_MEASURE,
    Currency,
)
from devtools.erp_sim.stamps import Stamper, format_timestamp, random_uuid
from devtools.erp_sim.store import Row

# Item numbers that are awkward in URLs, OData literals and table keys.
ODD_ITEM_NUMBERS: tuple[str, ...] = (
    "AB/12#3",
    "CD?45",
    "EF\\67",
    "ÜBER-GRÖSSE-1",
    "O'NEIL-1",
    "R&D+1",
    "ÅSA 2/B",
)
_ODD_FIRST = 2  # odd numbers occupy item positions 2..8

ITEM_ROLES: dict[int, str] = {
    0: "plain",
    9: "emptyDisplayName",
    10: "mediaUrlNotAUrl",
    11: "mediaUrlEmpty",
    12: "attributeWithoutName",
    13: "hugeDescription",
    14: "blocked",
    15: "secondUnitBox",
    16: "fiveDecimalPrice",
    17: "noStock",
}
MALFORMED_CONTENT: dict[str, str] = {
    "emptyDisplayName": "item displayName and marketingText are empty strings",
    "mediaUrlNotAUrl": "media[0].url is 'not a url'",
    "mediaUrlEmpty": "media[0].url is an empty string",
    "attributeWithoutName": "one attribute has an empty name",
    "hugeDescription": "description is 60,000 characters long",
}
CUSTOMER_ROLES: dict[int, str] = {
    0: "plain",
    1: "blockedAll",
    2: "blockedShip",
    3: "blockedInvoice",
    4: "creditNearlyExhausted",
    5: "euro",
    6: "noLineDiscount",
    7: "noCreditLimit",
    8: "overdue",
}

_ADJECTIVES = (
    "Classic",
    "Ergo",
    "Compact",
    "Deluxe",
    "Urban",
    "Nordic",
    "Studio",
    "Pro",
    "Eco",
    "Heritage",
    "Modular",
    "Slim",
    "Grand",
    "Basic",
    "Premium",
    "Smart",
    "Vintage",
    "Prime",
)
_NOUNS: dict[str, tuple[str, ...]] = {
    "CHAIR": ("Chair", "Stool", "Swivel Chair"),
    "DESK": ("Desk", "Standing Desk", "Writing Desk"),
    "LAMP": ("Lamp", "Floor Lamp", "Desk Light"),
    "STORAGE": ("Cabinet", "Drawer Unit", "Locker"),
    "TABLE": ("Table", "Side Table", "Meeting Table"),
    "ACCESSORY": ("Monitor Arm", "Footrest", "Desk Pad"),
    "ELECTRONIC": ("Charger", "Headset", "Webcam"),
    "PAPER": ("Notebook", "Copy Paper", "Envelope Pack"),
    "CABLE": ("HDMI Cable", "USB-C Cable", "Extension Lead"),
    "SOFA": ("Sofa", "Armchair", "Pouf"),
    "SHELF": ("Bookcase", "Wall Shelf", "Rack"),
    "TOOL": ("Screwdriver Set", "Tape Measure", "Cutter"),
}
_COMPANY_WORDS = (
    "Adatum",
    "Fabrikam",
    "Litware",
    "Northwind",
    "Proseware",
    "Tailspin",
    "Wingtip",
    "Contoso",
    "Alpine",
    "Coho",
    "Fourth",
    "Lucerne",
    "Margie",
    "Trey",
    "Woodgrove",
)
_COMPANY_SUFFIXES = ("Corporation", "Ltd.", "GmbH", "Inc.", "Trading", "Supplies", "Group")
_CITIES = (
    ("Seattle", "US"),
    ("Atlanta", "US"),
    ("Chicago", "US"),
    ("Boston", "US"),
    ("Munich", "DE"),
    ("Lyon", "FR"),
    ("Rotterdam", "NL"),
    ("Milan", "IT"),
)
_SENTENCES = (
    "Built for daily use in busy offices and tested for years of service.",
    "The frame is made of recycled steel with a powder-coated finish.",
    "Assembly takes less than fifteen minutes with the included tools.",
    "Every part can be replaced, which keeps it out of the landfill for longer.",
    "Certified to the latest safety and ergonomics standards.",
    "Ships flat-packed in fully recyclable cardboard without plastic foam.",
    "Available from stock in all three of our distribution centers.",
    "Pairs well with the rest of the collection for a consistent look.",
    "Covered by a five-year warranty on all mechanical parts.",
    "Designed with input from facility managers and occupational therapists.",
    "Surfaces resist scratches, stains and the occasional spilled coffee.",
    "The neutral colors fit reception areas as well as home offices.",
    "Lightweight enough to move, sturdy enough to stay where you put it.",
    "Volume pricing is available for framework agreements and projects.",
    "Spare parts stay available for at least ten years after purchase.",
    "Meets the requirements of most public tenders for office equipment.",
)
_ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "Color": ("Black", "White", "Oak", "Graphite", "Red", "Sand"),
    "Material": ("Steel", "Beech", "Aluminium", "Recycled plastic", "Fabric"),
    "Width (cm)": ("40", "60", "80", "120", "160"),
    "Weight (kg)": ("1.2", "3.5", "7", "12.8", "24"),
    "Warranty": ("2 years", "5 years", "10 years"),
    "Origin": ("Germany", "Poland", "USA", "Vietnam", "Portugal"),
}

_TIMESTAMP_POOL_BITS = 13  # 8,192 distinct past timestamps, shared by all rows
_DESCRIPTION_POOL = 400
_ATTRIBUTE_POOL = 256


@dataclass(frozen=True)
class _Campaign:
    code: str
    start: str
    end: str


@dataclass
class _ItemFacts:
    """What the later generators need to know about an item."""

    number: str
    price_u5: int  # list price in units of 0.00001
    fine_price: bool  # priced with up to 5 decimals
    box_qty: int  # quantity per BOX, 0 when the item is not sold in boxes
    base_unit: str


def generate(*, seed: int, items: int, customers: int, anchor: date, stamper: Stamper) -> Dataset:
    """Build the demo company for ``seed`` with ``items`` items and ``customers`` customers."""
    dataset = Dataset(seed=seed, anchor=anchor, stamper=stamper)
    builder = _Builder(seed, anchor, stamper)
    builder.reference(dataset)
    customer_rows = builder.customers(dataset, customers)
    facts = builder.items(dataset, items)
    builder.availability(dataset, facts)
    builder.content(dataset, facts)
    builder.price_lines(dataset, facts, customer_rows)
    builder.currencies(dataset)
    return dataset


def _money(units_u5: int) -> float | int:
    """A JSON number for an amount in units of 0.00001 (ints stay ints, like BC's 0)."""
    if units_u5 % 100_000 == 0:
        return units_u5 // 100_000
    return units_u5 / 100_000


class _Builder:
    def __init__(self, seed: int, anchor: date, stamper: Stamper) -> None:
        self._seed = seed
        self._anchor = anchor
        self._stamper = stamper
        midnight = datetime.combine(anchor, time(0, 0), tzinfo=UTC)
        pool_rng = self._rng("timestamps")
        year = 365 * 86_400
        self._timestamps = sorted(
            format_timestamp(
                midnight
                - timedelta(
                    seconds=pool_rng.randrange(60, year), milliseconds=pool_rng.randrange(1000)
                )
            )
            for _ in range(1 << _TIMESTAMP_POOL_BITS)
        )
        self._campaigns = (
            _Campaign("SPRING", self._day(-30), self._day(30)),
            _Campaign("WINTER", self._day(-120), self._day(-60)),
            _Campaign("SUMMER", self._day(30), self._day(90)),
            _Campaign("FLASH", self._day(0), self._day(0)),
        )

    def _rng(self, domain: str) -> random.Random:
        # One stream per domain: changing the item count does not reshuffle customers.
        return random.Random(f"{self._seed}:{domain}")

    def _day(self, offset: int) -> str:
        return (self._anchor + timedelta(days=offset)).isoformat()

    def _stamp(self, rng: random.Random) -> tuple[str, str]:
        """An ETag and a lastModifiedDateTime drawn from the past-timestamp pool."""
        return (
            self._stamper.next_etag(),
            self._timestamps[rng.getrandbits(_TIMESTAMP_POOL_BITS)],
        )

    # ---- reference data -------------------------------------------------------------

    def _campaign_targets(self, rng: random.Random, role: str | None) -> str:
        """Comma-separated campaigns this customer is a target of. Fixed for two fixture
        customers, so both sides of Business Central's rule can be relied on: "plain" is in
        every campaign, "noLineDiscount" in none."""
        draws = [rng.random() < 0.5 for _ in self._campaigns]
        if role == "plain":
            draws = [True] * len(draws)
        elif role == "noLineDiscount":
            draws = [False] * len(draws)
        return ",".join(c.code for c, taken in zip(self._campaigns, draws, strict=True) if taken)

    def _rate_row(self, rng: random.Random, currency: Currency) -> Row:
        """One exchange rate valid from long ago: 1 unit = ``lcy_per_unit`` LCY."""
        etag, modified = self._stamp(rng)
        return {
            "@odata.etag": etag,
            "id": random_uuid(rng),
            "currencyCode": currency.code,
            "startingDate": "2020-01-01",
            "exchangeRateAmount": 1,
            "relationalCurrencyCode": "",
            "relationalExchangeRateAmount": float(currency.lcy_per_unit),
            "lastModifiedDateTime": modified,
        }

    def currencies(self, dataset: Dataset) -> None:
        """Rounding precisions of every currency (blank code: the local currency), and the
        exchange rates of currencies added later, from a stream of their own."""
        rng = self._rng("currencies")
        rows, rates = [], []
        for currency in CURRENCIES.values():
            etag, modified = self._stamp(rng)
            rows.append(
                {
                    "@odata.etag": etag,
                    "id": random_uuid(rng),
                    "currencyCode": "" if currency.code == LOCAL_CURRENCY else currency.code,
                    "amountRoundingPrecision": json_number(currency.amount_precision),
                    "unitAmountRoundingPrecision": json_number(currency.unit_amount_precision),
                    "lastModifiedDateTime": modified,
                }
            )
            if currency.code in LATER_CURRENCIES:
                rates.append(self._rate_row(rng, currency))
        dataset["currencyRoundings"].load(rows)
        for row in rates:
            dataset["currencyExchangeRates"].insert(row)

    def reference(self, dataset: Dataset) -> None:
        rng = self._rng("reference")
        location_rows = []
        for location in LOCATIONS:
            etag, modified = self._stamp(rng)
            location_rows.append(
                {
                    "@odata.etag": etag,
                    "id": location.id,
                    "code": location.code,
                    "displayName": location.display_name,
                    "lastModifiedDateTime": modified,
                }
            )
        dataset["locations"].load(location_rows)
        # One rate per foreign currency, valid from long ago: 1 unit = lcy_per_unit LCY.
        rate_rows = []
        for currency in CURRENCIES.values():
            if currency.code == LOCAL_CURRENCY or currency.code in LATER_CURRENCIES:
                continue
            rate_rows.append(self._rate_row(rng, currency))
        dataset["currencyExchangeRates"].load(rate_rows)
        category_rows = []
        for code, name in ITEM_CATEGORIES:
            etag, modified = self._stamp(rng)
            category_rows.append(
                {
                    "@odata.etag": etag,
                    "id": random_uuid(rng),
                    "code": code,
                    "displayName": name,
                    "lastModifiedDateTime": modified,
                }
            )
        dataset["itemCategories"].load(category_rows)
        dataset.fixtures.campaigns = {c.code: (c.start, c.end) for c in self._campaigns}

    # ---- customers ------------------------------------------------------------------

    def customers(self, dataset: Dataset, count: int) -> list[Row]:
        rng = self._rng("customers")
        # Campaign target groups from a stream of their own (added later: other data unchanged).
        targets_rng = self._rng("campaign-targets")
        customers, profiles, summaries, financials = [], [], [], []
        fixtures = dataset.fixtures.customers
        for index in range(count):
            role = CUSTOMER_ROLES.get(index)
            number = f"C{index + 1:05d}"
            if role:
                fixtures[role] = number
            customer_id = random_uuid(rng)
            city, country = rng.choice(_CITIES)
            currency = "EUR" if (role == "euro" or (role is None and rng.random() < 0.2)) else "USD"
            blocked = BLANK_ENUM
            if role == "blockedAll":
                blocked = "All"
            elif role == "blockedShip":
                blocked = "Ship"
            elif role == "blockedInvoice":
                blocked = "Invoice"
            elif role is None:
                draw = rng.random()
                blocked = "All" if draw < 0.02 else "Ship" if draw < 0.04 else BLANK_ENUM
            limit = rng.choice((0, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000))
            balance = rng.randrange(0, max(limit, 20_000) * 70) // 100
            overdue = balance * rng.choice((0, 0, 0, 10, 25)) // 100
            outstanding = rng.choice((0, 0, 0, limit // 20, limit // 10))
            if role == "creditNearlyExhausted":
                limit, balance, overdue, outstanding = 5_000, 4_900, 0, 0
            elif role == "noCreditLimit":
                limit = 0
            elif role == "overdue":
                limit, balance, overdue, outstanding = 50_000, 12_000, 4_500, 0
            elif role in ("plain", "euro", "noLineDiscount") and limit == 0:
                limit = 100_000
            name = f"{rng.choice(_COMPANY_WORDS)} {rng.choice(_COMPANY_SUFFIXES)}"
            etag, modified = self._stamp(rng)
            customers.append(
                {
                    "@odata.etag": etag,
                    "id": customer_id,
                    "number": number,
                    "displayName": name,
                    "type": "Company",
                    "addressLine1": f"{rng.randrange(1, 400)} Commerce Street",
                    "city": city,
                    "country": country,
                    "email": f"orders@{number.lower()}.example.com",
                    "phoneNumber": f"+1-555-{rng.randrange(1000, 9999)}",
                    "currencyId": CURRENCY_IDS[currency],
                    "currencyCode": currency,
                    "paymentTermsId": rng.choice(PAYMENT_TERMS_IDS),
                    "blocked": blocked,
                    "creditLimit": limit,
                    "balanceDue": balance,
                    "lastModifiedDateTime": modified,
                }
            )
            price_group = "" if rng.random() < 0.2 else rng.choice(CUSTOMER_PRICE_GROUPS)
            if role == "plain":
                price_group = "WHOLESALE"
            profiles.append(
                {
                    "@odata.etag": self._stamper.next_etag(),
                    "id": customer_id,
                    "customerNumber": number,
                    "customerPriceGroup": price_group,
                    "customerDiscountGroup": rng.choice(("", *CUSTOMER_DISCOUNT_GROUPS)),
                    # Custom pages show the stored value: blank means the local currency.
                    "currencyCode": "" if currency == LOCAL_CURRENCY else currency,
                    "allowLineDisc": role != "noLineDiscount" and rng.random() >= 0.1,
                    "pricesIncludingVat": False,
                    # The activated campaigns whose target group holds this customer.
                    "activeCampaigns": self._campaign_targets(targets_rng, role),
                    "lastModifiedDateTime": modified,
                }
            )
            summaries.append(
                {
                    "@odata.etag": self._stamper.next_etag(),
                    "id": customer_id,
                    "customerNumber": number,
                    "creditLimit": limit,
                    "balance": balance,
                    "overdueAmount": overdue,
                    "outstandingOrdersAmount": outstanding,
                    "blocked": blocked,
                    "lastModifiedDateTime": modified,
                }
            )
            financials.append(
                {
                    "@odata.etag": self._stamper.next_etag(),
                    "id": customer_id,
                    "number": number,
                    "balance": balance,
                    "totalSalesExcludingTax": balance + rng.randrange(0, 500_000),
                    "overdueAmount": overdue,
                    "lastModifiedDateTime": modified,
                }
            )
        dataset["customers"].load(customers)
        dataset["customerPricingProfiles"].load(profiles)
        dataset["customerCreditSummaries"].load(summaries)
        dataset["customerFinancialDetails"].load(financials)
        return customers

    # ---- items ----------------------------------------------------------------------

    def items(self, dataset: Dataset, count: int) -> list[_ItemFacts]:
        rng = self._rng("items")
        categories = dataset["itemCategories"].find
        category_ids = {code: categories("code", code)[0]["id"] for code, _ in ITEM_CATEGORIES}
        category_codes = [code for code, _ in ITEM_CATEGORIES]
        rows: list[Row] = []
        units: list[Row] = []
        facts: list[_ItemFacts] = []
        fixtures = dataset.fixtures
        pcs_id, box_id = UNITS_OF_MEASURE["PCS"], UNITS_OF_MEASURE["BOX"]
        for index in range(count):
            role = ITEM_ROLES.get(index)
            odd = index - _ODD_FIRST
            if 0 <= odd < len(ODD_ITEM_NUMBERS):
                number = ODD_ITEM_NUMBERS[odd]
                fixtures.odd_item_numbers.append(number)
            else:
                number = f"IT-{index + 1:06d}"
            if role:
                fixtures.items[role] = number
                if role in MALFORMED_CONTENT:
                    fixtures.malformed_content[number] = MALFORMED_CONTENT[role]
            category = category_codes[rng.getrandbits(16) % len(category_codes)]
            fine = role == "fiveDecimalPrice" or (role is None and rng.random() < 0.03)
            if fine:
                price_u5 = rng.randrange(10_000, 50_000_000)
                if price_u5 % 1000 == 0:
                    price_u5 += 7  # keep it visibly finer than cents
            else:
                price_u5 = rng.randrange(100, 200_000) * 1000
            box_qty = 0
            base_unit = "PCS"
            if role == "secondUnitBox":
                box_qty = 12
            elif role is None:
                draw = rng.random()
                if draw < 0.2:
                    box_qty = rng.choice((6, 12, 24))
                elif draw < 0.25:
                    base_unit = "BOX"
            blocked = role == "blocked" or (role is None and rng.random() < 0.02)
            display_name = (
                ""
                if role == "emptyDisplayName"
                else f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS[category])} {index + 1}"
            )
            gtin = "" if rng.random() < 0.1 else _gtin(rng)
            etag, modified = self._stamp(rng)
            item_id = random_uuid(rng)
            rows.append(
                {
                    "@odata.etag": etag,
                    "id": item_id,
                    "number": number,
                    "displayName": display_name,
                    "displayName2": "",
                    "type": "Inventory",
                    "itemCategoryId": category_ids[category],
                    "itemCategoryCode": category,
                    "blocked": blocked,
                    "gtin": gtin,
                    "inventory": 0,
                    "unitPrice": _money(price_u5),
                    "priceIncludesTax": False,
                    "unitCost": _money(price_u5 * 6 // 10_000 * 1000),
                    "taxGroupCode": "TAXABLE",
                    "baseUnitOfMeasureId": pcs_id if base_unit == "PCS" else box_id,
                    "baseUnitOfMeasureCode": base_unit,
                    "lastModifiedDateTime": modified,
                }
            )
            item_units = {base_unit: Decimal(1)}
            units.append(self._unit_row(rng, number, base_unit, 1, modified))
            if box_qty:
                item_units["BOX"] = Decimal(box_qty)
                units.append(self._unit_row(rng, number, "BOX", box_qty, modified))
            dataset.item_units[number] = item_units
            facts.append(_ItemFacts(number, price_u5, fine, box_qty, base_unit))
        dataset["items"].load(rows)
        dataset["itemUnitsOfMeasure"].load(units)
        return facts

    def _unit_row(self, rng: random.Random, number: str, code: str, qty: int, modified: str) -> Row:
        return {
            "@odata.etag": self._stamper.next_etag(),
            "id": random_uuid(rng),
            "itemNumber": number,
            "code": code,
            "qtyPerUnitOfMeasure": qty,
            "lastModifiedDateTime": modified,
        }

    # ---- stock ----------------------------------------------------------------------

    def availability(self, dataset: Dataset, facts: list[_ItemFacts]) -> None:
        rng = self._rng("availability")
        rows: list[Row] = []
        items = dataset["items"]
        no_stock = dataset.fixtures.items.get("noStock")
        for fact in facts:
            total = 0
            for position, location in enumerate(LOCATIONS):
                if position == 1 and rng.random() >= 0.6:
                    continue
                if position == 2 and rng.random() >= 0.5:
                    continue
                on_hand = 0 if rng.random() < 0.1 else rng.randrange(1, 500)
                if fact.number == no_stock:
                    on_hand = 0
                reserved = min(on_hand, rng.randrange(0, 20)) if rng.random() < 0.3 else 0
                on_orders = rng.randrange(0, 30) if rng.random() < 0.4 else 0
                expected = rng.randrange(10, 200) if rng.random() < 0.3 else 0
                total += on_hand
                etag, modified = self._stamp(rng)
                rows.append(
                    {
                        "@odata.etag": etag,
                        "id": random_uuid(rng),
                        "itemNumber": fact.number,
                        "locationCode": location.code,
                        "inventory": on_hand,
                        "reservedQuantity": reserved,
                        # Sales lines hold part of the reservations (inside their demand).
                        "reservedQtyOnSalesOrders": min(reserved, on_orders),
                        "qtyOnSalesOrders": on_orders,
                        "qtyOnPurchaseOrders": expected,
                        "lastModifiedDateTime": modified,
                    }
                )
            item = items.find_one("number", fact.number)
            if item is not None:
                item["inventory"] = total
        dataset["itemAvailabilityByLocation"].load(rows)

    # ---- marketing content ----------------------------------------------------------

    def content(self, dataset: Dataset, facts: list[_ItemFacts]) -> None:
        rng = self._rng("content")
        descriptions = [
            " ".join(rng.choice(_SENTENCES) for _ in range(rng.randrange(5, 16)))
            for _ in range(_DESCRIPTION_POOL)
        ]
        attribute_sets = []
        for _ in range(_ATTRIBUTE_POOL):
            names = rng.sample(sorted(_ATTRIBUTE_VALUES), rng.randrange(2, 6))
            attribute_sets.append(
                [{"name": name, "value": rng.choice(_ATTRIBUTE_VALUES[name])} for name in names]
            )
        roles = {number: role for role, number in dataset.fixtures.items.items()}
        items = dataset["items"]
        rows: list[Row] = []
        for fact in facts:
            item = items.find_one("number", fact.number)
            name = item["displayName"] if item else ""
            role = roles.get(fact.number)
            url = f"https://media.contoso.example/items/{quote(fact.number, safe='')}/main.jpg"
            attributes: list[dict[str, Any]] = attribute_sets[rng.getrandbits(8)]
            description = descriptions[rng.randrange(_DESCRIPTION_POOL)]
            if role == "mediaUrlNotAUrl":
                url = "not a url"
            elif role == "mediaUrlEmpty":
                url = ""
            elif role == "attributeWithoutName":
                attributes = [*attributes, {"name": "", "value": "orphan value"}]
            elif role == "hugeDescription":
                description = ("Oversized description. " * 2609)[:60_000]
            etag, modified = self._stamp(rng)
            rows.append(
                {
                    "@odata.etag": etag,
                    "id": random_uuid(rng),
                    "itemNumber": fact.number,
                    "description": description,
                    "marketingText": f"{name}: made to last, priced to move." if name else "",
                    "attributes": attributes,
                    "media": [{"id": random_uuid(rng), "url": url, "mimeType": "image/jpeg"}],
                    "lastModifiedDateTime": modified,
                }
            )
        dataset["itemContent"].load(rows)

    # ---- price list lines -----------------------------------------------------------

    def price_lines(self, dataset: Dataset, facts: list[_ItemFacts], customers: list[Row]) -> None:
        rng = self._rng("prices")
        stamper, pool, bits = self._stamper, self._timestamps, _TIMESTAMP_POOL_BITS
        new_id = random_uuid
        rows: list[Row] = []
        append = rows.append
        customer_refs = [(row["number"], row["currencyCode"]) for row in customers]
        yesterday, tomorrow = self._day(-1), self._day(1)
        year_ago, window_start, window_end = self._day(-365), self._day(-10), self._day(10)
        campaigns = self._campaigns
        random_ = rng.random

        def line(
            code: str,
            source_type: str,
            source_no: str,
            item: str,
            amount_type: str,
            price_u5: int,
            *,
            discount: float | int = 0,
            minimum: int = 0,
            currency: str = "",
            unit: str = "",
            start: str = BLANK_DATE,
            end: str = BLANK_DATE,
            allow_disc: bool = True,
        ) -> None:
            append(
                {
                    "@odata.etag": stamper.next_etag(),
                    "id": new_id(rng),
                    "priceListCode": code,
                    "sourceType": source_type,
                    "sourceNo": source_no,
                    "assetType": "Item",
                    "assetNo": item,
                    "variantCode": "",
                    "unitOfMeasureCode": unit,
                    "minimumQuantity": minimum,
                    "amountType": amount_type,
                    "unitPrice": _money(price_u5),
                    "lineDiscountPercent": discount,
                    "allowLineDisc": allow_disc,
                    "startingDate": start,
                    "endingDate": end,
                    "currencyCode": currency,
                    "lastModifiedDateTime": pool[rng.getrandbits(bits)],
                }
            )

        for fact in facts:
            number, list_u5 = fact.number, fact.price_u5
            price: Callable[[int, int], int] = _fine_percent if fact.fine_price else _cents_percent
            if random_() < 0.7:
                pct = rng.randrange(90, 100)
                line("SALES-ALL", "All Customers", "", number, "Price", price(list_u5, pct))
                if random_() < 0.5:
                    line(
                        "SALES-ALL",
                        "All Customers",
                        "",
                        number,
                        "Price",
                        price(list_u5, pct - 5),
                        minimum=10,
                    )
                    if random_() < 0.3:
                        line(
                            "SALES-ALL",
                            "All Customers",
                            "",
                            number,
                            "Price",
                            price(list_u5, pct - 10),
                            minimum=50,
                        )
            if random_() < 0.8:
                group = CUSTOMER_PRICE_GROUPS[rng.getrandbits(2)]
                line(
                    f"GRP-{group}",
                    "Customer Price Group",
                    group,
                    number,
                    "Price",
                    price(list_u5, rng.randrange(80, 96)),
                    allow_disc=random_() >= 0.2,
                )
            if customer_refs and random_() < 0.5:
                customer_no, currency = customer_refs[rng.randrange(len(customer_refs))]
                windowed = random_() < 0.3
                factor = 93 if currency == "EUR" else 100
                line(
                    f"CONTRACT-{customer_no}",
                    "Customer",
                    customer_no,
                    number,
                    "Price",
                    price(price(list_u5, rng.randrange(75, 91)), factor),
                    currency="" if currency == LOCAL_CURRENCY else currency,
                    start=window_start if windowed else BLANK_DATE,
                    end=window_end if windowed else BLANK_DATE,
                )
            if random_() < 0.3:
                campaign = campaigns[rng.getrandbits(2)]
                line(
                    f"CAMP-{campaign.code}",
                    "Campaign",
                    campaign.code,
                    number,
                    "Price",
                    price(list_u5, rng.randrange(70, 89)),
                    start=campaign.start,
                    end=campaign.end,
                )
            if random_() < 0.5:
                discount = (2, 5, 7.5, 10, 12.5, 15)[rng.randrange(6)]
                if random_() < 0.5:
                    group = CUSTOMER_PRICE_GROUPS[rng.getrandbits(2)]
                    code, source_type, source_no = f"DISC-{group}", "Customer Price Group", group
                else:
                    code, source_type, source_no = "DISC-ALL", "All Customers", ""
                line(
                    code,
                    source_type,
                    source_no,
                    number,
                    "Discount",
                    0,
                    discount=discount,
                    minimum=(0, 0, 10, 24)[rng.getrandbits(2)],
                )
            if random_() < 0.35:
                line(
                    "SALES-ALL-EUR",
                    "All Customers",
                    "",
                    number,
                    "Price",
                    price(list_u5, rng.randrange(88, 96)),
                    currency="EUR",
                )
            if random_() < 0.2:
                cheaper = price(list_u5, rng.randrange(50, 70))
                if random_() < 0.5:
                    line(
                        "SALES-ALL-OLD",
                        "All Customers",
                        "",
                        number,
                        "Price",
                        cheaper,
                        start=year_ago,
                        end=yesterday,
                    )
                else:
                    line(
                        "SALES-ALL-NEXT",
                        "All Customers",
                        "",
                        number,
                        "Price",
                        cheaper,
                        start=tomorrow,
                    )
            if random_() < 0.05:
                line(
                    "VIP-SPECIAL",
                    "Customer Price Group",
                    "VIP",
                    number,
                    "Any",
                    price(list_u5, 85),
                    discount=5,
                )
            if fact.box_qty and random_() < 0.6:
                line(
                    "SALES-ALL",
                    "All Customers",
                    "",
                    number,
                    "Price",
                    price(list_u5 * fact.box_qty, 90),
                    unit="BOX",
                )
        dataset["priceListLines"].load(rows)


def _cents_percent(value_u5: int, percent: int) -> int:
    """``percent`` % of a price, rounded half-up to whole cents."""
    return (value_u5 * percent + 50_000) // 100_000 * 1000


def _fine_percent(value_u5: int, percent: int) -> int:
    """``percent`` % of a price, rounded half-up to 0.00001."""
    return (value_u5 * percent + 50) // 100


def _gtin(rng: random.Random) -> str:
    body = f"{rng.randrange(10**11, 10**12):012d}"
    total = sum(int(d) * (3 if position % 2 else 1) for position, d in enumerate(body))
    return body + str((10 - total % 10) % 10)
