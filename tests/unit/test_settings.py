from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.config.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        alias = Settings.model_fields[name].validation_alias
        for choice in getattr(alias, "choices", []):
            monkeypatch.delenv(str(choice), raising=False)


def test_defaults_point_at_the_local_stack() -> None:
    settings = load_settings()
    assert settings.storage_connection == "UseDevelopmentStorage=true"
    assert settings.service_bus_connection is not None
    assert "127.0.0.1:5672" in settings.service_bus_connection
    assert settings.erp_base_url == "http://127.0.0.1:8787"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ERP_BASE_URL", "ftp://erp"),
        ("ERP_TIMEOUT_SECONDS", "soon"),
        ("ERP_COMPANY_ID", "not-a-guid"),
        ("SYNC_POLICY", '{"housekeeping": {"heartbeat": {"interval": "PT7M"}}}'),
        ("APP_ENV", "production"),
    ],
)
def test_a_malformed_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_client_credentials_need_their_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERP_AUTH_MODE", "client_credentials")
    monkeypatch.setenv("ERP_CLIENT_ID", "app-id")
    with pytest.raises(SettingsError, match="ERP_CLIENT_SECRET"):
        load_settings()


def test_identity_based_names_keep_their_double_underscore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "prodstore")
    monkeypatch.setenv("ServiceBusConnection__fullyQualifiedNamespace", "ns.servicebus.windows.net")
    settings = load_settings()
    assert settings.storage_account_name == "prodstore"
    assert settings.service_bus_namespace == "ns.servicebus.windows.net"


def test_cloud_refuses_plain_http_to_the_erp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "cloud")
    with pytest.raises(SettingsError, match="https"):
        load_settings()


def test_sample_settings_cover_every_setting_the_app_reads() -> None:
    values = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    read_by_app = {
        str(choice)
        for field in Settings.model_fields.values()
        for choice in getattr(field.validation_alias, "choices", [])
        if "__" not in str(choice)  # identity-based forms are for Azure, not local
    }
    assert read_by_app - set(values) == set()
    load_settings(**{k: v for k, v in values.items() if k in read_by_app})


def test_channels_are_validated_and_need_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.channels["b2b-eu"].sells_from("MAIN")
    assert not settings.channels["b2b-eu"].sells_from("WEST")
    assert settings.channel_secret("web") == b"local-web-secret"
    monkeypatch.setenv("CHANNELS", '{"web": {"locations": "everywhere"}}')
    with pytest.raises(SettingsError, match="CHANNELS"):
        load_settings()
    monkeypatch.setenv("CHANNELS", '{"shop": {}}')
    with pytest.raises(SettingsError, match="no secret for channel"):
        load_settings()


def test_cloud_refuses_the_demo_channel_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "cloud")
    monkeypatch.setenv("ERP_BASE_URL", "https://api.businesscentral.dynamics.com")
    with pytest.raises(SettingsError, match="CHANNEL_SECRETS"):
        load_settings()


def _entra_principals(monkeypatch: pytest.MonkeyPatch, *numbers: int) -> None:
    """Entra ID credentials for the default principal (app-main) and booking principals
    app-<n> with secret-<n>."""
    monkeypatch.setenv("ERP_AUTH_MODE", "client_credentials")
    monkeypatch.setenv("ERP_CLIENT_ID", "app-main")
    monkeypatch.setenv("ERP_CLIENT_SECRET", "secret-main")
    monkeypatch.setenv(
        "ERP_BOOKING_PRINCIPALS",
        json.dumps([{"clientId": f"app-{n}", "clientSecret": f"secret-{n}"} for n in numbers]),
    )


def test_booking_principals_reach_the_erp_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.bootstrap import erp_config

    _entra_principals(monkeypatch, 2)
    config = erp_config(load_settings())
    assert [p.client_id for p in config.booking_principals] == ["app-2"]
    second = config.for_principal(config.booking_principals[0])
    assert second.client_id == "app-2"
    assert second.client_secret is not None
    assert second.client_secret.get_secret_value() == "secret-2"


def test_principal_labels_are_client_ids_or_positions_never_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Usage records and the operations views name each principal by these labels."""
    from shared.bootstrap import erp_config

    _entra_principals(monkeypatch, 2)
    assert erp_config(load_settings()).principal_labels() == ("app-main", "app-2")

    monkeypatch.setenv("ERP_AUTH_MODE", "static")
    monkeypatch.setenv("ERP_STATIC_TOKEN", "token-main")
    monkeypatch.setenv(
        "ERP_BOOKING_PRINCIPALS", json.dumps([{"token": "token-2"}, {"token": "token-3"}])
    )
    labels = erp_config(load_settings()).principal_labels()
    assert labels == ("default", "principal-1", "principal-2")

    monkeypatch.setenv("ERP_AUTH_MODE", "none")
    monkeypatch.delenv("ERP_BOOKING_PRINCIPALS")
    assert erp_config(load_settings()).principal_labels() == ("default",)


@pytest.mark.parametrize(
    ("mode", "value"),
    [
        ("client_credentials", '[{"clientId": "app-2"}]'),  # no secret
        ("client_credentials", '{"clientId": "app-2", "clientSecret": "hush-hush"}'),  # no list
        ("static", '[{"clientId": "app-2", "clientSecret": "hush-hush"}]'),  # no token
        ("none", '[{"token": "hush-hush"}]'),  # principals told apart only by their token
        ("client_credentials", "not json hush-hush"),
    ],
)
def test_malformed_booking_principals_are_named_without_their_secrets(
    monkeypatch: pytest.MonkeyPatch, mode: str, value: str
) -> None:
    monkeypatch.setenv("ERP_AUTH_MODE", mode)
    monkeypatch.setenv("ERP_CLIENT_ID", "app-main")
    monkeypatch.setenv("ERP_CLIENT_SECRET", "secret-main")
    monkeypatch.setenv("ERP_STATIC_TOKEN", "token-main")
    monkeypatch.setenv("ERP_BOOKING_PRINCIPALS", value)
    with pytest.raises(SettingsError, match="ERP_BOOKING_PRINCIPALS") as raised:
        load_settings()
    assert "hush-hush" not in str(raised.value)


def test_a_booking_principal_equal_to_the_default_is_refused() -> None:
    from pydantic import SecretStr, ValidationError

    from shared.adapters.erp.config import BookingPrincipal, ErpConfig

    with pytest.raises(ValidationError, match="must differ"):
        ErpConfig(
            tenant="t",
            company_id="7d3c1f5e-2b4a-4c1e-9f3d-0c5e8a6b1d20",
            base_url="http://127.0.0.1:1",
            auth_mode="static",
            static_token=SecretStr("same"),
            booking_principals=(BookingPrincipal(static_token=SecretStr("same")),),
        )


def test_each_booking_principal_has_its_own_shared_limits_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """BC counts each principal on its own, so the instances share one record per principal."""
    from shared.adapters.stores.erp_limits import TableLimitsStore
    from shared.bootstrap import shared_erp_limits
    from tests.support.memory_tables import InMemoryTableStore

    _entra_principals(monkeypatch, 2, 3)
    settings = load_settings()
    tables = InMemoryTableStore()
    records = []
    for number in range(3):
        store = shared_erp_limits(settings, tables, number)._store  # type: ignore[arg-type]
        assert isinstance(store, TableLimitsStore)
        records.append(store._partition)
    assert len(set(records)) == 3
    assert all("secret" not in record for record in records)
