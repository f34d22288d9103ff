"""Building blocks of the HTTP contract shared by every capability: wire types and problems.

Response models describe what is on the wire, not the domain: money and quantities are the
decimal strings the contract promises, timestamps ISO 8601 strings with an offset. Handlers
send answers through these models, so the published OpenAPI schema is the one the code obeys;
an answer that does not fit its model is a bug and fails loudly instead of drifting.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel

DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"


def _decimal_text(value: object) -> object:
    # Services hand over Decimals or already formatted strings; both end up as plain decimals.
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def _aware_timestamp(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise ValueError("must carry a UTC offset")
    return value


DecimalString = Annotated[
    str,
    BeforeValidator(_decimal_text),
    Field(pattern=DECIMAL_PATTERN, examples=["12.50"]),
]
"""Money or a fractional figure as the contract writes it: a decimal string, never a float."""

WireQuantity = Annotated[int, Strict()] | DecimalString

MAX_MONEY_INPUT = Decimal("999999999999")


def _money_input(value: Decimal) -> Decimal:
    if not value.is_finite() or value < 0:
        raise ValueError("must be a finite decimal >= 0")
    if value > MAX_MONEY_INPUT:
        raise ValueError(f"must be at most {MAX_MONEY_INPUT}")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -5:
        raise ValueError("must have at most 5 decimals")
    return value


# A sum of money a caller sends (a credit-check amount, an expected unit price): a number or a
# decimal string, at most 12 digits before the point and 5 after, never negative.
MoneyInput = Annotated[
    Decimal,
    AfterValidator(_money_input),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": int(MAX_MONEY_INPUT)},
                {"type": "string", "pattern": r"^[0-9]{1,12}(\.[0-9]{1,5})?$"},
            ],
            "description": "At most 5 decimals; a decimal string keeps it exact.",
        },
        mode="validation",
    ),
]
"""A quantity: a JSON integer when whole, else a decimal string (as the services write it)."""

Timestamp = Annotated[
    str,
    AfterValidator(_aware_timestamp),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""An ISO 8601 timestamp with its UTC offset, written exactly as the service produced it."""


class WireModel(BaseModel):
    """Base of response models: camelCase on the wire, nothing undeclared slips out."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    def wire_json(self) -> str:
        """The body as sent: aliases, and fields the service left out stay out."""
        return self.model_dump_json(by_alias=True, exclude_unset=True)


class Violation(WireModel):
    """One broken rule of a 422 (or the field a 400-class problem is about)."""

    rule: str = Field(max_length=100, examples=["invalid-field"])
    detail: str
    field: str | None = Field(None, description="Where in the request: `lines[2].quantity`.")
    sku: str | None = None
    line: int | None = Field(None, ge=0, description="Index of the request line.")
    # The figures behind an order violation (price, stock, credit), as decimal strings.
    expected_unit_price: DecimalString | None = None
    unit_price: DecimalString | None = None
    requested: DecimalString | None = None
    available: DecimalString | None = None
    blocked: str | None = Field(None, description="Business Central's Blocked value.")
    order_amount_lcy: DecimalString | None = None
    available_credit: DecimalString | None = None
    overdue_amount: DecimalString | None = None
    quantity: DecimalString | None = Field(
        None, description="quantity-over-threshold: the line's quantity in base units."
    )
    limit: DecimalString | None = Field(
        None, description="quantity-over-threshold: the largest quantity the policy allows."
    )
    limit_source: Literal["customer", "item", "default"] | None = Field(
        None, description="quantity-over-threshold: which limit of the sync policy applies."
    )


class Problem(WireModel):
    """An RFC 9457 problem document (``application/problem+json``)."""

    type: str = Field(examples=["about:blank"])
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    violations: list[Violation] | None = None
    order_id: str | None = Field(None, description="The order a rejection was stored under.")


def problem_body(problem: dict[str, Any]) -> str:
    """A problem document checked against ``Problem`` and serialised as sent."""
    return Problem.model_validate(problem).wire_json()
