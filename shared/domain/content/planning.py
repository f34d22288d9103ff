"""What to send to a channel: the difference between what it should have and what it has.

"What it has" is the content hash this product last had acknowledged by the channel (None:
the channel does not have the SKU). Sending is idempotent per SKU and hash, so planning from
a slightly stale hash only ever costs a repeat that the channel answers "unchanged".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from shared.domain.content.listing import ChannelProfile, Listing, listing_for
from shared.domain.content.product import InvalidProduct, Outcome, Product


class Action(StrEnum):
    UPSERT = "upsert"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Operation:
    """One catalog operation for one channel."""

    action: Action
    sku: str
    # The new hash for an upsert; for a delete the last hash the channel acknowledged.
    content_hash: str | None
    listing: Listing | None = None

    @property
    def size_bytes(self) -> int:
        # The envelope around each operation ({"sku":..,"contentHash":..}) is ~100 bytes.
        return 100 + len(self.sku) + (self.listing.size_bytes if self.listing else 0)


@dataclass
class ChannelPlan:
    """The operations for one channel plus why the other products need nothing."""

    operations: list[Operation]
    unchanged: int = 0  # the channel already has this exact content
    not_sold: int = 0  # outside the channel's assortment and not on it
    invalid: int = 0  # broken in the ERP: the channel keeps its last good version


def plan_channel(
    outcomes: Iterable[Outcome],
    channel: ChannelProfile,
    stored_hashes: Mapping[str, str | None],
    price_currency: str,
) -> ChannelPlan:
    """Operations that bring ``channel`` in line with ``outcomes`` (one per SKU at most)."""
    plan = ChannelPlan(operations=[])
    seen: set[str] = set()
    for outcome in outcomes:
        if outcome.sku in seen:
            continue  # the storefront rejects a SKU twice in one batch; the first one wins
        seen.add(outcome.sku)
        stored = stored_hashes.get(outcome.sku)
        if isinstance(outcome, InvalidProduct):
            plan.invalid += 1
            continue
        if isinstance(outcome, Product) and channel.sells(outcome):
            listing = listing_for(outcome, channel, price_currency)
            if listing.content_hash == stored:
                plan.unchanged += 1
            else:
                plan.operations.append(
                    Operation(Action.UPSERT, outcome.sku, listing.content_hash, listing)
                )
        elif stored is not None:
            plan.operations.append(Operation(Action.DELETE, outcome.sku, stored))
        else:
            plan.not_sold += 1
    return plan


def deletions(skus: Iterable[str], stored_hashes: Mapping[str, str | None]) -> list[Operation]:
    """Deletes for SKUs the ERP no longer has (the full pass's sweep)."""
    return [Operation(Action.DELETE, sku, stored_hashes.get(sku)) for sku in skus]


def split_batches(
    operations: Sequence[Operation], max_operations: int, max_bytes: int
) -> list[list[Operation]]:
    """Consecutive batches of at most ``max_operations`` and about ``max_bytes`` each.

    A single operation larger than ``max_bytes`` still gets a batch of its own: the channel
    decides whether it is too large (and says so per batch), not the planner.
    """
    if max_operations < 1 or max_bytes < 1:
        raise ValueError("batches need room for at least one operation")
    batches: list[list[Operation]] = []
    current: list[Operation] = []
    size = 0
    for operation in operations:
        op_size = operation.size_bytes
        if current and (len(current) >= max_operations or size + op_size > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(operation)
        size += op_size
    if current:
        batches.append(current)
    return batches
