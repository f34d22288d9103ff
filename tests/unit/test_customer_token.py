"""The signed customer token of the B2B history routes (pure)."""

from __future__ import annotations

import pytest

from shared.domain.orders.customer_token import InvalidCustomerToken, sign, verify

SECRETS = {"web": b"web-secret", "b2b": b"b2b-secret"}
NOW = 1_800_000_000


def test_a_token_proves_its_customer_and_channel() -> None:
    token = sign(SECRETS["b2b"], "b2b", "C.00001", NOW + 600)
    proof = verify(token, SECRETS, NOW)
    assert (proof.channel, proof.customer_id, proof.expires) == ("b2b", "C.00001", NOW + 600)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "no x-customer-token"),
        ("", "no x-customer-token"),
        ("v2.web.QzAwMDAx.1800000600.00", "not a v1"),
        ("v1.shop.QzAwMDAx.1800000600.00", "unknown channel"),
        ("v1.web.QzAwMDAx.soon.00", "malformed"),
        ("v1.web.QzAwMDAx.1800000600." + "0" * 64, "bad signature"),
        ("x" * 600, "too long"),
        ("v1.web.QzAwMDAx.1800000600.ünïcödé", "bad signature"),
        ("v1.web.AA.1800000600.00", "malformed customer"),
    ],
)
def test_malformed_or_forged_tokens_are_refused(token: str | None, reason: str) -> None:
    with pytest.raises(InvalidCustomerToken, match=reason):
        verify(token, SECRETS, NOW)


def test_another_channels_secret_or_a_changed_customer_fails() -> None:
    token = sign(SECRETS["web"], "b2b", "C00001", NOW + 60)  # signed with web's secret
    with pytest.raises(InvalidCustomerToken, match="bad signature"):
        verify(token, SECRETS, NOW)
    good = sign(SECRETS["web"], "web", "C00001", NOW + 60).split(".")
    good[2] = "QzAwMDAy"  # C00002
    with pytest.raises(InvalidCustomerToken, match="bad signature"):
        verify(".".join(good), SECRETS, NOW)


def test_expired_and_long_lived_tokens_are_refused() -> None:
    with pytest.raises(InvalidCustomerToken, match="expired"):
        verify(sign(SECRETS["web"], "web", "C00001", NOW), SECRETS, NOW)
    with pytest.raises(InvalidCustomerToken, match="longer than"):
        verify(sign(SECRETS["web"], "web", "C00001", NOW + 7200), SECRETS, NOW)
