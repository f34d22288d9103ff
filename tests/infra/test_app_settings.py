"""Every setting the app reads is set by the Bicep (Azure) and by local.settings.sample.json.

The list of settings comes from ``shared/config/settings.py`` at test time, so a setting added there
without a line in ``infra/main.bicep`` (or in the sample) fails here, naming it.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import pytest
from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from shared.config.settings import Settings
from tests.infra.bicep import ROOT, Template

# In local.settings.sample.json but deliberately not in Azure, each with the reason.
LOCAL_ONLY = {
    "LOCAL_FUNCTION_KEY": "key of the local runner; Azure keeps function keys itself",
    "LOCAL_ADMIN_KEY": "admin key of the local runner; Azure keeps the master key itself",
    "FUNCTIONS_WORKER_RUNTIME": "Flex Consumption takes it from functionAppConfig.runtime",
    "AzureWebJobsFeatureFlags": "worker indexing is the default in Azure",
    "AzureWebJobsStorage": "connection string; Azure uses AzureWebJobsStorage__accountName",
    "ServiceBusConnection": "connection string; Azure uses the __fullyQualifiedNamespace form",
}
KEY_VAULT_REFERENCE = re.compile(
    r"^@Microsoft\.KeyVault\(SecretUri=\$\{keyVault\.outputs\.(\w+)\}\)$"
)


def _names(field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    return [str(choice) for choice in getattr(alias, "choices", [])] or (
        [str(alias)] if alias else []
    )


def settings_read_by_app() -> dict[str, FieldInfo]:
    """Setting name -> field, for every name the settings model accepts."""
    return {name: field for field in Settings.model_fields.values() for name in _names(field)}


def connection_string_forms(names: set[str]) -> set[str]:
    """Names that have an identity-based twin (X and X__something): Azure must use the twin."""
    return {name for name in names if any(other.startswith(name + "__") for other in names)}


def _is_secret(field: FieldInfo) -> bool:
    return "SecretStr" in repr(field.annotation)


@pytest.fixture(scope="module")
def bicep_settings(main_template: Template) -> dict[str, Any]:
    settings: dict[str, Any] = main_template.variables["appSettings"]["value"]
    return settings


@pytest.fixture(scope="module")
def sample_settings() -> dict[str, str]:
    values: dict[str, str] = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    return values


def test_the_settings_model_is_read_dynamically() -> None:
    names = set(settings_read_by_app())
    # A sanity floor, not a list: the model is the source, this only proves it was read.
    assert {"APP_ENV", "AzureWebJobsStorage__accountName", "ERP_BASE_URL"} <= names
    assert {"AzureWebJobsStorage", "ServiceBusConnection"} <= connection_string_forms(names)
    # A field without a setting name would be invisible to every check in this file.
    assert [n for n, f in Settings.model_fields.items() if not _names(f)] == []


def test_bicep_sets_every_setting_the_app_reads(bicep_settings: dict[str, Any]) -> None:
    names = set(settings_read_by_app())
    required = names - connection_string_forms(names)
    missing = sorted(required - set(bicep_settings))
    assert missing == [], f"add these to appSettings in infra/main.bicep: {missing}"


def test_bicep_uses_identity_based_connections_only(bicep_settings: dict[str, Any]) -> None:
    names = set(settings_read_by_app())
    assert connection_string_forms(names) & set(bicep_settings) == set()
    assert "AzureWebJobsStorage__accountName" in bicep_settings
    assert "ServiceBusConnection__fullyQualifiedNamespace" in bicep_settings
    assert bicep_settings["APP_ENV"] == "cloud"


def test_sample_sets_every_setting_the_app_reads(sample_settings: dict[str, str]) -> None:
    names = set(settings_read_by_app())
    identity_forms = {name for name in names if "__" in name}
    missing = sorted(names - identity_forms - set(sample_settings))
    assert missing == [], f"add these to local.settings.sample.json: {missing}"


def test_only_documented_local_settings_stay_out_of_azure(
    sample_settings: dict[str, str], bicep_settings: dict[str, Any]
) -> None:
    not_in_azure = set(sample_settings) - set(bicep_settings)
    undocumented = sorted(not_in_azure - set(LOCAL_ONLY))
    assert undocumented == [], (
        f"set these in infra/main.bicep or explain in LOCAL_ONLY: {undocumented}"
    )
    assert set(LOCAL_ONLY) & set(bicep_settings) == set()


def test_secrets_are_key_vault_references_or_unused(
    bicep_settings: dict[str, Any], templates: dict[str, Template]
) -> None:
    vault = templates["modules/keyvault.bicep"]
    secret_settings = {name for name, field in settings_read_by_app().items() if _is_secret(field)}
    assert {"ERP_CLIENT_SECRET", "CHANNEL_SECRETS", "ERP_WEBHOOK_CLIENT_STATE"} <= secret_settings
    for name in sorted(secret_settings):
        value = bicep_settings[name]
        if value == "":
            continue  # not used in Azure (e.g. a developer's static token)
        match = KEY_VAULT_REFERENCE.match(str(value))
        assert match, f"{name} must be a Key Vault reference in Azure, not {value!r}"
        assert match.group(1) in vault.outputs, f"{name} refers to a missing output"
    referenced = [n for n in secret_settings if bicep_settings[n] != ""]
    assert set(referenced) >= {"ERP_CLIENT_SECRET", "CHANNEL_SECRETS", "ERP_WEBHOOK_CLIENT_STATE"}


def test_secret_parameters_are_secure_and_never_defaulted(main_template: Template) -> None:
    for name in ("erpClientSecret", "channelSecrets", "erpWebhookClientState"):
        assert main_template.is_secure(name)
        assert main_template.parameter_default(name) is None


def _validator(field: FieldInfo) -> TypeAdapter[Any]:
    # The field's type with its constraints (pattern, ge, ...), without alias or default.
    if not field.metadata:
        return TypeAdapter(field.annotation)
    return TypeAdapter(Annotated[field.annotation, *field.metadata])  # type: ignore[name-defined]


def test_fixed_values_in_bicep_are_valid_settings(
    bicep_settings: dict[str, Any], main_template: Template
) -> None:
    fields = settings_read_by_app()
    checked = 0
    for name, value in bicep_settings.items():
        if name not in fields or not isinstance(value, str) or "${" in value:
            continue  # platform settings, and values computed at deployment time
        if value in main_template.parameters:
            value = main_template.parameter_default(value)
            if not isinstance(value, str):
                continue  # required parameter, or a default computed at deployment time
        try:
            _validator(fields[name]).validate_python(value)
        except ValidationError as error:
            pytest.fail(f"{name}={value!r} in infra/main.bicep is not a valid setting: {error}")
        checked += 1
    assert checked >= 20  # most settings are fixed values; proves the loop did its job


def test_the_example_parameters_fit_the_template(main_template: Template) -> None:
    document = json.loads((ROOT / "infra" / "main.parameters.example.json").read_text())
    given = document["parameters"]
    unknown = sorted(set(given) - set(main_template.parameters))
    assert unknown == []
    secure = {name for name in main_template.parameters if main_template.is_secure(name)}
    assert secure & set(given) == set(), "secrets never go into a parameters file"
    required = {
        name
        for name, spec in main_template.parameters.items()
        if spec.get("default") is None and name not in secure
    }
    assert sorted(required - set(given)) == []
    # The example channels must be what the app accepts.
    from shared.config.channels import parse_channels

    assert parse_channels(given["channels"]["value"])


def test_every_trigger_placeholder_is_set_in_azure(bicep_settings: dict[str, Any]) -> None:
    from tests.infra.app_index import all_bindings

    placeholders = {
        setting
        for _, binding in all_bindings()
        for value in binding.values()
        for setting in re.findall(r"%([^%]+)%", str(value))
    }
    assert sorted(placeholders - set(bicep_settings)) == []


def test_timer_schedules_are_the_policy_literals() -> None:
    from shared.bootstrap import get_policy
    from tests.infra.app_index import all_bindings

    timers = {
        name: binding["schedule"]
        for name, binding in all_bindings()
        if binding["type"] == "timerTrigger"
    }
    # Every timer is declared by the policy and gets its derived NCRONTAB as a literal, so
    # Azure needs no schedule setting at all.
    assert timers == get_policy().schedules()
    assert all("%" not in schedule for schedule in timers.values())


def test_app_settings_are_applied_after_the_role_assignments(main_template: Template) -> None:
    config = main_template.resources["siteAppSettings"]["config"]
    assert config["name"] == "appsettings"
    # Key Vault references and identity connections resolve only once the roles exist.
    assert "access" in config["dependsOn"]
    properties = config["properties"]["function"]
    assert properties["type"] == "union"
    assert properties["parameters"]["arg_1"] == "appSettings"
