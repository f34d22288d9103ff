"""The Business Central client the product uses: typed reads, writes and safe order booking.

One instance per process (built by the composition root, reused by every invocation), so
connections are reused and the limits, breaker and counters cover all calls of the
principal. Close it with ``aclose()`` or use it as an async context manager.

With ``ErpConfig.booking_principals`` the booking of sales orders (look-up and create) is
spread over the default principal and those: each has its own token, its own requests in
flight and its own budget (Business Central counts them per user or app), so bookings go
as many times further. Everything else keeps the default principal.
"""

from __future__ import annotations

import random as _random
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel

from shared.adapters.erp.auth import TokenProvider, token_provider_for
from shared.adapters.erp.booking import BookingResult, CreateAttempt, book_sales_order_once
from shared.adapters.erp.breaker import BreakerState
from shared.adapters.erp.clock import Clock, SystemClock
from shared.adapters.erp.config import ErpConfig
from shared.adapters.erp.contract import (
    parse_collection,
    parse_entity,
    parse_rows,
    response_json,
)
from shared.adapters.erp.errors import ErpNotFound
from shared.adapters.erp.models import (
    Company,
    Customer,
    CustomerCreditSummary,
    CustomerFinancialDetail,
    CustomerPricingProfile,
    Item,
    ItemAvailability,
    ItemCategory,
    ItemContent,
    Location,
    PriceListLine,
    SalesOrder,
    SalesOrderCreate,
    SalesQuote,
    SalesQuoteCreate,
    Subscription,
    SubscriptionCreate,
    normalize_external_document_number,
)
from shared.adapters.erp.odata import (
    Api,
    ErpUrls,
    and_filters,
    eq_filter,
    guid_key,
    modified_since_filter,
    string_key,
)
from shared.adapters.erp.paging import iter_pages
from shared.adapters.erp.request_pipeline import ErpCounters, Method, RequestPipeline
from shared.adapters.erp.resources import (
    CUSTOMERS,
    ITEM_AVAILABILITY,
    ITEM_CATEGORIES,
    ITEM_CONTENT,
    ITEMS,
    LOCATIONS,
    PRICE_LIST_LINES,
    Resource,
)
from shared.adapters.erp.shared_limits import SharedLimits
from shared.observability.correlation import get_correlation_id

ModelT = TypeVar("ModelT", bound=BaseModel)

# Keeps a live multi-SKU lookup's URL short; BC has no documented filter length limit.
_MAX_NUMBERS_PER_FILTER = 20

# The partner's custom API pages (everything else is Microsoft's v2.0 API).
CUSTOM_ENTITY_SETS = frozenset(
    {
        "priceListLines",
        "itemUnitsOfMeasure",
        "itemAvailabilityByLocation",
        "itemContent",
        "customerCreditSummaries",
        "customerPricingProfiles",
        "salesShipmentTracking",
    }
)


class ErpClient:
    """Async Business Central client honouring BC's limits by construction."""

    def __init__(
        self,
        config: ErpConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        random: Callable[[], float] | None = None,
        token_provider: TokenProvider | None = None,
        correlation_id_provider: Callable[[], str | None] | None = None,
        shared_limits: SharedLimits | None = None,
        booking_shared_limits: Sequence[SharedLimits | None] = (),
    ) -> None:
        """``booking_shared_limits``: the shared limits of each ``config.booking_principals``
        principal, in order (missing ones: this process alone)."""
        self.config = config
        self._clock: Clock = clock or SystemClock()
        principals = 1 + len(config.booking_principals)
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(
                connect=config.connect_timeout_seconds,
                read=config.read_timeout_seconds,
                write=config.read_timeout_seconds,
                pool=config.connect_timeout_seconds,
            ),
            # Room for BC's 5 concurrent requests per principal plus token calls; kept alive.
            limits=httpx.Limits(
                max_connections=principals * config.max_concurrent + 2,
                max_keepalive_connections=principals * config.max_concurrent + 2,
            ),
            follow_redirects=False,
        )
        self.urls = ErpUrls(config)
        tokens = token_provider or token_provider_for(config, self._http, self._clock)
        self._pipeline = RequestPipeline(
            config,
            self._http,
            tokens,
            self._clock,
            random or _random.random,
            correlation_id_provider or get_correlation_id,
            shared_limits,
        )
        # The default principal first, then one pipeline per booking principal.
        self._booking: list[RequestPipeline] = [self._pipeline]
        for index, principal in enumerate(config.booking_principals):
            own = config.for_principal(principal)
            self._booking.append(
                RequestPipeline(
                    own,
                    self._http,
                    token_provider_for(own, self._http, self._clock),
                    self._clock,
                    random or _random.random,
                    correlation_id_provider or get_correlation_id,
                    booking_shared_limits[index] if index < len(booking_shared_limits) else None,
                )
            )
        self._booking_turn = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    def counters(self) -> ErpCounters:
        """Requests sent, throttled responses, retries, breaker openings and state."""
        return self._pipeline.counters()

    def booking_counters(self) -> list[ErpCounters]:
        """The counters of each booking principal, the default one first."""
        return [pipeline.counters() for pipeline in self._booking]

    def principal_counters(self) -> list[tuple[str, ErpCounters]]:
        """Each principal's label (``ErpConfig.principal_labels``) and counters, the default
        one first: what the usage records and the operations views report per principal."""
        labels = self.config.principal_labels()
        return [
            (label, pipeline.counters())
            for label, pipeline in zip(labels, self._booking, strict=True)
        ]

    def _booking_pipeline(self) -> RequestPipeline:
        """The booking principal with the most room now: one whose breaker is not open (a
        principal whose calls keep failing, e.g. a revoked secret, is left alone until its
        breaker probes again), then fewest requests in flight or waiting, then the least of
        its window's budget used; ties go round the principals in turn."""
        if len(self._booking) == 1:
            return self._pipeline
        self._booking_turn = (self._booking_turn + 1) % len(self._booking)
        turn = self._booking[self._booking_turn :] + self._booking[: self._booking_turn]
        return min(
            turn,
            key=lambda pipeline: (pipeline.breaker.state is BreakerState.OPEN, pipeline.load),
        )

    def answering(self) -> bool:
        """This client's last ERP call answered and none has failed since (breaker closed)."""
        return self._pipeline.breaker.answering

    # ---- generic building blocks ----

    def iter_pages(
        self,
        entity_set: str,
        model: type[ModelT],
        *,
        api: Api = Api.STANDARD,
        filter: str | None = None,
        modified_since: datetime | None = None,
        page_size: int | None = None,
        read_only: bool = False,
        extra_params: Mapping[str, str | int | None] | None = None,
        correlation_id: str | None = None,
    ) -> AsyncGenerator[list[ModelT]]:
        """Every page of an entity set, validated; delta when ``modified_since`` is given."""
        watermark = (
            modified_since_filter(modified_since, self.config.watermark_overlap_seconds)
            if modified_since is not None
            else None
        )
        params: dict[str, str | int | None] = {"$filter": and_filters(filter, watermark)}
        params.update(extra_params or {})
        url = self.urls.with_query(self.urls.entity_set(entity_set, api), params)
        return iter_pages(
            self._pipeline,
            self.urls,
            url,
            model,
            entity_set=entity_set,
            page_size=page_size or self.config.page_size,
            read_only=read_only,
            correlation_id=correlation_id,
        )

    async def iter_rows(
        self,
        entity_set: str,
        model: type[ModelT],
        *,
        api: Api = Api.STANDARD,
        filter: str | None = None,
        modified_since: datetime | None = None,
        page_size: int | None = None,
        read_only: bool = False,
        correlation_id: str | None = None,
    ) -> AsyncGenerator[ModelT]:
        """Every row of an entity set, one at a time (only one page held in memory)."""
        pages = self.iter_pages(
            entity_set,
            model,
            api=api,
            filter=filter,
            modified_since=modified_since,
            page_size=page_size,
            read_only=read_only,
            correlation_id=correlation_id,
        )
        async for page in pages:
            for row in page:
                yield row

    async def get_entity(
        self,
        entity_set: str,
        key: str,
        model: type[ModelT],
        *,
        api: Api = Api.STANDARD,
        read_only: bool = False,
        correlation_id: str | None = None,
    ) -> ModelT:
        """One entity by its key segment (``guid_key``/``string_key``); 404 -> ``ErpNotFound``."""
        url = self.urls.entity_set(entity_set, api, key=key)
        return await self._send_for(
            model, "GET", url, entity_set, read_only=read_only, correlation_id=correlation_id
        )

    async def find_first(
        self,
        entity_set: str,
        model: type[ModelT],
        filter: str,
        *,
        api: Api = Api.STANDARD,
        read_only: bool = False,
        correlation_id: str | None = None,
    ) -> ModelT | None:
        """The first row matching ``filter``, or None."""
        rows = await self._find(
            entity_set,
            model,
            filter,
            api=api,
            read_only=read_only,
            top=1,
            correlation_id=correlation_id,
        )
        return rows[0] if rows else None

    async def patch(
        self,
        entity_set: str,
        key: str,
        etag: str,
        changes: Mapping[str, Any],
        model: type[ModelT],
        *,
        api: Api = Api.STANDARD,
        correlation_id: str | None = None,
    ) -> ModelT:
        """Change fields of one entity if it is unchanged since read (412 -> ``ErpConflict``)."""
        url = self.urls.entity_set(entity_set, api, key=key)
        return await self._send_for(
            model,
            "PATCH",
            url,
            entity_set,
            body=changes,
            etag=etag,
            correlation_id=correlation_id,
        )

    async def delete(
        self,
        entity_set: str,
        key: str,
        etag: str,
        *,
        api: Api = Api.STANDARD,
        correlation_id: str | None = None,
    ) -> None:
        """Delete one entity if it is unchanged since read."""
        url = self.urls.entity_set(entity_set, api, key=key)
        await self._pipeline.send(
            "DELETE", url, entity_set=entity_set, etag=etag, correlation_id=correlation_id
        )

    # ---- batch reads (sync jobs) ----

    async def list_companies(self, *, correlation_id: str | None = None) -> list[Company]:
        """The companies the principal can see (to check the configured one exists)."""
        response = await self._pipeline.send(
            "GET", self.urls.companies(), entity_set="companies", correlation_id=correlation_id
        )
        page = parse_collection(response_json(response, "companies"), "companies")
        return parse_rows(Company, page.value, "companies")

    def _rows(
        self,
        resource: Resource[ModelT],
        modified_since: datetime | None,
        read_only: bool,
        correlation_id: str | None,
        filter: str | None = None,
    ) -> AsyncGenerator[ModelT]:
        return self.iter_rows(
            resource.entity_set,
            resource.model,
            api=resource.api,
            filter=filter,
            modified_since=modified_since,
            read_only=read_only,
            correlation_id=correlation_id,
        )

    def iter_items(
        self,
        modified_since: datetime | None = None,
        *,
        read_only: bool = False,
        correlation_id: str | None = None,
    ) -> AsyncGenerator[Item]:
        """Items, all or changed since a watermark (minus the overlap)."""
        return self._rows(ITEMS, modified_since, read_only, correlation_id)

    def iter_customers(
        self,
        modified_since: datetime | None = None,
        *,
        read_only: bool = False,
        correlation_id: str | None = None,
    ) -> AsyncGenerator[Customer]:
        """Customers, all or changed since a watermark."""
        return self._rows(CUSTOMERS, modified_since, read_only, correlation_id)

    def iter_price_list_lines(
        self,
        modified_since: datetime | None = None,
        *,
        read_only: bool = False,
        correlation_id: str | None = None,
    ) -> AsyncGenerator[PriceListLine]:
        """Price list lines from the custom page (BC has no standard price API)."""
        return self._rows(PRICE_LIST_LINES, modified_since, read_only, correlation_id)

    def iter_price_list_line_pages(
        self,
        modified_since: datetime | None = None,
        *,
        read_only: bool = False,
        correlation_id: str | None = None,
    ) -> AsyncGenerator[list[PriceListLine]]:
        """The same, a page at a time, for writers that batch per page."""
        lines = PRICE_LIST_LINES
        return self.iter_pages(
            lines.entity_set,
            lines.model,
            api=lines.api,
            modified_since=modified_since,
            read_only=read_only,
            correlation_id=correlation_id,
        )

    def iter_item_availability(
        self,
        modified_since: datetime | None = None,
        *,
        location_code: str | None = None,
        read_only: bool = False,
        correlation_id: str | None = None,
    ) -> AsyncGenerator[ItemAvailability]:
        """Per-location stock rows from the custom page (for reconciliation)."""
        location = eq_filter("locationCode", location_code) if location_code else None
        return self._rows(ITEM_AVAILABILITY, modified_since, read_only, correlation_id, location)

    def iter_item_content(
        self,
        modified_since: datetime | None = None,
        *,
        read_only: bool = False,
        correlation_id: str | None = None,
    ) -> AsyncGenerator[ItemContent]:
        """Marketing content for the batch content sync."""
        return self._rows(ITEM_CONTENT, modified_since, read_only, correlation_id)

    def iter_item_categories(
        self, *, read_only: bool = False, correlation_id: str | None = None
    ) -> AsyncGenerator[ItemCategory]:
        return self._rows(ITEM_CATEGORIES, None, read_only, correlation_id)

    def iter_locations(
        self, *, read_only: bool = False, correlation_id: str | None = None
    ) -> AsyncGenerator[Location]:
        return self._rows(LOCATIONS, None, read_only, correlation_id)

    # ---- live lookups (hot path: read replica by default) ----

    async def get_item_by_number(
        self, number: str, *, read_only: bool = True, correlation_id: str | None = None
    ) -> Item:
        return await self._get_by_filter(
            "items",
            Item,
            eq_filter("number", number),
            number,
            read_only=read_only,
            correlation_id=correlation_id,
        )

    async def get_customer_by_number(
        self, number: str, *, read_only: bool = True, correlation_id: str | None = None
    ) -> Customer:
        return await self._get_by_filter(
            "customers",
            Customer,
            eq_filter("number", number),
            number,
            read_only=read_only,
            correlation_id=correlation_id,
        )

    async def get_customer_financial_details(
        self, customer_id: UUID, *, read_only: bool = True, correlation_id: str | None = None
    ) -> CustomerFinancialDetail:
        """Balance and overdue amount; the customer's id is the key."""
        return await self.get_entity(
            "customerFinancialDetails",
            guid_key(customer_id),
            CustomerFinancialDetail,
            read_only=read_only,
            correlation_id=correlation_id,
        )

    async def get_credit_summary(
        self, customer_number: str, *, read_only: bool = True, correlation_id: str | None = None
    ) -> CustomerCreditSummary:
        """Credit limit, balance, overdue and outstanding orders in one custom-page read."""
        return await self._get_by_filter(
            "customerCreditSummaries",
            CustomerCreditSummary,
            eq_filter("customerNumber", customer_number),
            customer_number,
            api=Api.CUSTOM,
            read_only=read_only,
            correlation_id=correlation_id,
        )

    async def get_pricing_profile(
        self, customer_number: str, *, read_only: bool = True, correlation_id: str | None = None
    ) -> CustomerPricingProfile:
        """Price and discount groups (the v2.0 customer has no price group field)."""
        return await self._get_by_filter(
            "customerPricingProfiles",
            CustomerPricingProfile,
            eq_filter("customerNumber", customer_number),
            customer_number,
            api=Api.CUSTOM,
            read_only=read_only,
            correlation_id=correlation_id,
        )

    async def get_item_availability(
        self,
        item_numbers: Iterable[str],
        *,
        read_only: bool = True,
        correlation_id: str | None = None,
    ) -> list[ItemAvailability]:
        """Live per-location stock of a few items (one request per 20 numbers)."""
        numbers = list(dict.fromkeys(item_numbers))
        rows: list[ItemAvailability] = []
        for start in range(0, len(numbers), _MAX_NUMBERS_PER_FILTER):
            chunk = numbers[start : start + _MAX_NUMBERS_PER_FILTER]
            filter = " or ".join(eq_filter("itemNumber", n) for n in chunk)
            async for row in self.iter_rows(
                "itemAvailabilityByLocation",
                ItemAvailability,
                api=Api.CUSTOM,
                filter=filter,
                read_only=read_only,
                correlation_id=correlation_id,
            ):
                rows.append(row)
        return rows

    # ---- sales documents ----

    async def find_sales_order_by_external_document_number(
        self,
        external_document_number: str,
        *,
        read_only: bool = False,
        correlation_id: str | None = None,
        via: RequestPipeline | None = None,
    ) -> SalesOrder | None:
        """The order booked for one of our orders, or None.

        Not from the read replica by default: it must see an order committed a moment ago,
        or a booking retry would create a second one. Whichever principal asks, BC answers
        from the same company data, so a create sent by one is found by another.
        """
        key = normalize_external_document_number(external_document_number)
        found = await self._find(
            "salesOrders",
            SalesOrder,
            eq_filter("externalDocumentNumber", key),
            api=Api.STANDARD,
            read_only=read_only,
            top=1,
            correlation_id=correlation_id,
            via=via,
        )
        return found[0] if found else None

    async def get_sales_order(
        self, order_id: UUID, *, expand_lines: bool = False, correlation_id: str | None = None
    ) -> SalesOrder:
        url = self.urls.entity_set("salesOrders", key=guid_key(order_id))
        if expand_lines:
            url = self.urls.with_query(url, {"$expand": "salesOrderLines"})
        return await self._send_for(
            SalesOrder, "GET", url, "salesOrders", correlation_id=correlation_id
        )

    async def create_sales_order(
        self,
        payload: SalesOrderCreate,
        *,
        correlation_id: str | None = None,
        via: RequestPipeline | None = None,
    ) -> SalesOrder:
        """One POST with the lines inside (deep insert); never resent after it may have landed.

        Prefer ``create_sales_order_once``: this raises ``ErpAmbiguousResult`` when the
        outcome is unknown and leaves the lookup to the caller.
        """
        url = self.urls.entity_set("salesOrders")
        return await self._send_for(
            SalesOrder,
            "POST",
            url,
            "salesOrders",
            body=payload.to_body(),
            correlation_id=correlation_id,
            via=via,
        )

    async def create_sales_order_once(
        self,
        payload: SalesOrderCreate,
        *,
        correlation_id: str | None = None,
        attempt: CreateAttempt | None = None,
        look_first: bool = True,
    ) -> BookingResult:
        """Create the order unless BC already has one with its external document number.

        ``ErpAmbiguousResult.decided_by`` says when a lookup can prove the order absent;
        ``attempt.sent_at`` is set when the create goes out. ``look_first=False`` (see
        ``book_sales_order_once``) when no earlier attempt can have reached the ERP.

        One booking principal (the one with the most room) sends this booking's requests;
        the look-up finds an order whichever principal created it.
        """
        via = self._booking_pipeline()

        async def find(key: str) -> SalesOrder | None:
            return await self.find_sales_order_by_external_document_number(
                key, correlation_id=correlation_id, via=via
            )

        async def create(body: SalesOrderCreate) -> SalesOrder:
            return await self.create_sales_order(body, correlation_id=correlation_id, via=via)

        return await book_sales_order_once(
            payload,
            find=find,
            create=create,
            sleep=self._clock.sleep,
            lookup_attempts=self.config.ambiguous_lookup_attempts,
            lookup_delay_seconds=self.config.ambiguous_lookup_delay_seconds,
            now=self._clock.now,
            answer_limit=timedelta(seconds=self.config.answer_limit_seconds),
            attempt=attempt,
            look_first=look_first,
        )

    async def create_sales_quote(
        self, payload: SalesQuoteCreate, *, correlation_id: str | None = None
    ) -> SalesQuote:
        """A quote lets BC price an order without booking it (delete it afterwards)."""
        url = self.urls.entity_set("salesQuotes")
        return await self._send_for(
            SalesQuote,
            "POST",
            url,
            "salesQuotes",
            body=payload.to_body(),
            correlation_id=correlation_id,
        )

    async def delete_sales_quote(
        self, quote_id: UUID, etag: str, *, correlation_id: str | None = None
    ) -> None:
        await self.delete("salesQuotes", guid_key(quote_id), etag, correlation_id=correlation_id)

    # ---- webhook subscriptions ----

    def api_of(self, entity_set: str) -> Api:
        """The API this client reads ``entity_set`` from (and so subscribes to it at)."""
        return Api.CUSTOM if entity_set in CUSTOM_ENTITY_SETS else Api.STANDARD

    async def create_subscription(
        self,
        entity_set: str,
        notification_url: str,
        client_state: str | None = None,
        *,
        api: Api | None = None,
        correlation_id: str | None = None,
    ) -> Subscription:
        """Subscribe to changes of one entity set of the company (BC validates the URL first).

        Both the endpoint and the resource path are on the API the set belongs to; by default
        the one this client reads it from (a custom page such as ``itemAvailabilityByLocation``
        is subscribed at ``api/{publisher}/{group}/{version}/subscriptions``).
        """
        api = api or self.api_of(entity_set)
        payload = SubscriptionCreate(
            notification_url=notification_url,
            resource=self.urls.subscription_resource(entity_set, api),
            client_state=client_state,
        )
        return await self._send_for(
            Subscription,
            "POST",
            self.urls.subscriptions(api),
            "subscriptions",
            body=payload.to_body(),
            correlation_id=correlation_id,
        )

    async def renew_subscription(
        self,
        subscription_id: str,
        etag: str,
        *,
        api: Api = Api.STANDARD,
        correlation_id: str | None = None,
    ) -> Subscription:
        """Subscriptions expire after 3 days; a PATCH at the API that holds them renews them."""
        url = self.urls.subscriptions(api) + string_key(subscription_id)
        return await self._send_for(
            Subscription,
            "PATCH",
            url,
            "subscriptions",
            body={},
            etag=etag,
            correlation_id=correlation_id,
        )

    async def delete_subscription(
        self,
        subscription_id: str,
        etag: str,
        *,
        api: Api = Api.STANDARD,
        correlation_id: str | None = None,
    ) -> None:
        url = self.urls.subscriptions(api) + string_key(subscription_id)
        await self._pipeline.send(
            "DELETE", url, entity_set="subscriptions", etag=etag, correlation_id=correlation_id
        )

    async def list_subscriptions(
        self, *, api: Api = Api.STANDARD, correlation_id: str | None = None
    ) -> list[Subscription]:
        """The subscriptions held at one API's root (each API lists only its own)."""
        response = await self._pipeline.send(
            "GET",
            self.urls.subscriptions(api),
            entity_set="subscriptions",
            correlation_id=correlation_id,
        )
        page = parse_collection(response_json(response, "subscriptions"), "subscriptions")
        return parse_rows(Subscription, page.value, "subscriptions")

    async def list_all_subscriptions(
        self, *, correlation_id: str | None = None
    ) -> list[Subscription]:
        """The subscriptions at both roots: the standard API's and the custom API's."""
        found: list[Subscription] = []
        for api in Api:
            found += await self.list_subscriptions(api=api, correlation_id=correlation_id)
        return found

    # ---- helpers ----

    async def _send_for(
        self,
        model: type[ModelT],
        method: Method,
        url: str,
        entity_set: str,
        *,
        body: Mapping[str, Any] | None = None,
        etag: str | None = None,
        read_only: bool = False,
        correlation_id: str | None = None,
        via: RequestPipeline | None = None,
    ) -> ModelT:
        response = await (via or self._pipeline).send(
            method,
            url,
            entity_set=entity_set,
            body=body,
            etag=etag,
            read_only=read_only,
            correlation_id=correlation_id,
        )
        return parse_entity(model, response_json(response, entity_set), entity_set)

    async def _find(
        self,
        entity_set: str,
        model: type[ModelT],
        filter: str,
        *,
        api: Api,
        read_only: bool,
        top: int,
        correlation_id: str | None,
        via: RequestPipeline | None = None,
    ) -> list[ModelT]:
        url = self.urls.with_query(
            self.urls.entity_set(entity_set, api), {"$filter": filter, "$top": top}
        )
        response = await (via or self._pipeline).send(
            "GET", url, entity_set=entity_set, read_only=read_only, correlation_id=correlation_id
        )
        page = parse_collection(response_json(response, entity_set), entity_set)
        return parse_rows(model, page.value, entity_set)

    async def _get_by_filter(
        self,
        entity_set: str,
        model: type[ModelT],
        filter: str,
        wanted: str,
        *,
        api: Api = Api.STANDARD,
        read_only: bool,
        correlation_id: str | None,
    ) -> ModelT:
        found = await self.find_first(
            entity_set,
            model,
            filter,
            api=api,
            read_only=read_only,
            correlation_id=correlation_id,
        )
        if found is None:
            raise ErpNotFound(f"{entity_set}: no row for {wanted!r}", entity_set=entity_set)
        return found
