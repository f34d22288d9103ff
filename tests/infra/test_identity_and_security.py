"""Identity-based security of the deployed resources, asserted on the parsed Bicep.

checkov covers the generic rules; these tests pin down what this product promises: no keys or
connection strings anywhere, the narrowest built-in roles scoped to single resources (Service
Bus entities, Key Vault secrets), locked-down storage, Flex Consumption with Python 3.13.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.bicep import Template, accessor_path, bicep_files, body, scope_target

# Built-in role definition ids (identical in every tenant).
ALLOWED_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": "Azure Service Bus Data Sender",
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": "Azure Service Bus Data Receiver",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
# Key material in any form: account keys, SAS, shared access policies, key listing.
FORBIDDEN_TEXT = (
    "listKeys",
    "listConnectionStrings",
    "AccountKey",
    "SharedAccessKey",
    "primaryKey",
    "authorizationRules",
    "DefaultEndpointsProtocol",
)
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"


def _role_assignments(templates: dict[str, Template]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path}:{name}", assignment)
        for path, template in templates.items()
        for name, assignment in template.resources_of_type(ROLE_ASSIGNMENT).items()
    ]


def _role_id(assignment: dict[str, Any], role_ids: dict[str, str]) -> str:
    parameters = assignment["properties"]["roleDefinitionId"]["function"]["parameters"]
    assert parameters["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    return role_ids[accessor_path(parameters["resource_name_1"])[-1]]


@pytest.fixture(scope="module")
def role_ids(templates: dict[str, Template]) -> dict[str, str]:
    ids: dict[str, str] = templates["modules/access.bicep"].variables["roleIds"]["value"]
    return ids


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.name)
def test_no_key_or_connection_string_anywhere(path: Any) -> None:
    text = path.read_text()
    found = [token for token in FORBIDDEN_TEXT if token.lower() in text.lower()]
    assert found == []


def test_only_the_narrowest_built_in_roles_are_granted(
    templates: dict[str, Template], role_ids: dict[str, str]
) -> None:
    assignments = _role_assignments(templates)
    assert len(assignments) >= 6
    granted = {_role_id(a, role_ids) for _, a in assignments}
    assert granted == set(ALLOWED_ROLES), {ALLOWED_ROLES.get(r, r) for r in granted}
    for where, assignment in assignments:
        properties = assignment["properties"]
        assert properties["principalId"] == "principalId", where
        assert properties["principalType"] == "ServicePrincipal", where
        # Scoped to a resource declared in the file, never the resource group or subscription.
        target = scope_target(assignment["scope"])
        assert templates["modules/access.bicep"].resources[target]["existing"], where


def test_service_bus_and_key_vault_roles_are_per_entity(
    templates: dict[str, Template], role_ids: dict[str, str]
) -> None:
    access = templates["modules/access.bicep"]
    by_scope: dict[str, set[str]] = {}
    for assignment in access.resources_of_type(ROLE_ASSIGNMENT).values():
        target = scope_target(assignment["scope"])
        by_scope.setdefault(target, set()).add(ALLOWED_ROLES[_role_id(assignment, role_ids)])
    assert by_scope["queues"] == {
        "Azure Service Bus Data Sender",
        "Azure Service Bus Data Receiver",
    }
    assert by_scope["topics"] == {"Azure Service Bus Data Sender"}
    assert by_scope["secrets"] == {"Key Vault Secrets User"}
    assert by_scope["storage"] == {"Storage Blob Data Owner", "Storage Table Data Contributor"}
    assert access.resources["queues"]["existing"] and access.resources["secrets"]["existing"]


def test_every_referenced_secret_is_readable_by_the_app(templates: dict[str, Template]) -> None:
    vault = templates["modules/keyvault.bicep"]
    readable = {accessor_path(item)[0] for item in vault.outputs["secretNames"]["value"]}
    uri_outputs = {name: o for name, o in vault.outputs.items() if name.endswith("Uri")}
    assert uri_outputs
    for name, output in uri_outputs.items():
        assert accessor_path(output["value"])[1:] == ["properties", "secretUri"], name
        assert accessor_path(output["value"])[0] in readable, name
    main = templates["main.bicep"]
    passed = main.modules["access"]["config"]["params"]["secretNames"]
    assert accessor_path(passed) == ["keyVault", "outputs", "secretNames"]


def test_storage_is_https_tls12_private_and_keyless(templates: dict[str, Template]) -> None:
    storage = templates["modules/storage.bicep"]
    (account,) = storage.resources_of_type("Microsoft.Storage/storageAccounts").values()
    properties = account["properties"]
    assert properties["supportsHttpsTrafficOnly"] is True
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["allowBlobPublicAccess"] is False
    assert properties["allowSharedKeyAccess"] is False
    assert properties["defaultToOAuthAuthentication"] is True
    for template, parameter in ((storage, "skuName"), (templates["main.bicep"], "storageSkuName")):
        allowed = template.decorator(parameter, "allowed")
        assert allowed and not [sku for sku in allowed if sku.endswith("_LRS")]


def test_service_bus_accepts_entra_id_only(templates: dict[str, Template]) -> None:
    servicebus = templates["modules/servicebus.bicep"]
    (namespace,) = servicebus.resources_of_type("Microsoft.ServiceBus/namespaces").values()
    assert namespace["properties"]["disableLocalAuth"] is True
    assert namespace["properties"]["minimumTlsVersion"] == "1.2"
    # Duplicate detection and topics need Standard or Premium.
    assert namespace["sku"]["name"] in ("Standard", "Premium")


def test_key_vault_uses_rbac_and_cannot_be_purged(templates: dict[str, Template]) -> None:
    vault = templates["modules/keyvault.bicep"]
    (resource,) = vault.resources_of_type("Microsoft.KeyVault/vaults").values()
    properties = resource["properties"]
    assert properties["enableRbacAuthorization"] is True
    assert properties["enableSoftDelete"] is True
    assert properties["enablePurgeProtection"] is True
    for name in ("erpClientSecret", "channelSecrets", "erpWebhookClientState"):
        assert vault.is_secure(name) and vault.parameter_default(name) is None


def test_telemetry_is_sent_with_the_identity(
    templates: dict[str, Template], main_template: Template
) -> None:
    monitoring = templates["modules/monitoring.bicep"]
    (component,) = monitoring.resources_of_type("Microsoft.Insights/components").values()
    assert component["properties"]["DisableLocalAuth"] is True
    settings = main_template.variables["appSettings"]["value"]
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD"


def test_function_app_runs_on_flex_consumption_with_python_311(
    templates: dict[str, Template],
) -> None:
    app = templates["modules/functionapp.bicep"]
    (plan,) = app.resources_of_type("Microsoft.Web/serverfarms").values()
    assert plan["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    assert app.resources["site"]["api_version"] >= "2024-04-01"
    site = body(app.resources["site"]["config"])
    assert site["kind"] == "functionapp,linux"
    assert site["identity"] == {"type": "SystemAssigned"}
    properties = site["properties"]
    assert properties["httpsOnly"] is True
    assert properties["siteConfig"]["minTlsVersion"] == "1.2"
    assert properties["siteConfig"]["ftpsState"] == "Disabled"
    config = properties["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.13"}
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {"type": "SystemAssignedIdentity"}
    always_ready = config["scaleAndConcurrency"]["alwaysReady"]["operator"]["operands"]
    assert [group["name"] for group in always_ready["true_value"]] == ["http"]


def test_basic_auth_publishing_is_off(templates: dict[str, Template]) -> None:
    app = templates["modules/functionapp.bicep"]
    policies = app.resources_of_type("Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {p["name"]: p["properties"]["allow"] for p in policies.values()} == {
        "ftp": False,
        "scm": False,
    }
