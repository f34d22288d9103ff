// Key Vault for the app's secrets. App settings only reference them
// (@Microsoft.KeyVault(SecretUri=...)), so no secret value is ever an app setting, and the
// app's identity may read exactly these secrets (Key Vault Secrets User per secret, see
// access.bicep). Authorization is Azure RBAC, not access policies.

@description('Azure region of the resources.')
param location string

@description('Vault name: 3-24 letters, digits and hyphens, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Client secret of the Entra ID app registration that calls Business Central (ERP_CLIENT_SECRET).')
@secure()
param erpClientSecret string

@description('Webhook signing secrets per storefront channel, a JSON object {"channel": "secret"} (CHANNEL_SECRETS).')
@secure()
param channelSecrets string

@description('The clientState sent with Business Central webhook subscriptions (ERP_WEBHOOK_CLIENT_STATE).')
@secure()
param erpWebhookClientState string

@description('More Entra apps that share the booking of orders, a JSON list [{"clientId": ..., "clientSecret": ...}] (ERP_BOOKING_PRINCIPALS); empty = the default app alone (stored as []).')
@secure()
param erpBookingPrincipals string

@description('Tags applied to every resource.')
param tags object = {}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: A Flex Consumption app without VNet integration resolves Key Vault references over the public endpoint and is not a trusted service, so a deny-by-default firewall would break secret resolution. Access is RBAC-only, per secret, for one identity.
  // checkov:skip=CKV_AZURE_189: Same reason as CKV_AZURE_109: public network access stays on until the app runs with VNet integration and a private endpoint (README, Deploy to Azure).
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource erpClientSecretEntry 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: Rotation is owned at the source (the Entra app secret carries its own expiry); a vault-side expiry can make Key Vault refuse the secret (SecretExpired) and stop the app at start-up.
  parent: vault
  name: 'erp-client-secret'
  properties: {
    value: erpClientSecret
    contentType: 'text/plain'
  }
}

resource channelSecretsEntry 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: Rotated together with each storefront's verifier, not on a vault clock; an expiry can make Key Vault refuse the secret and stop the app.
  parent: vault
  name: 'channel-secrets'
  properties: {
    value: channelSecrets
    contentType: 'application/json'
  }
}

resource erpWebhookClientStateEntry 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: Changed together with the Business Central subscriptions that carry it; an expiry can make Key Vault refuse the secret and stop the app.
  parent: vault
  name: 'erp-webhook-client-state'
  properties: {
    value: erpWebhookClientState
    contentType: 'text/plain'
  }
}

resource erpBookingPrincipalsEntry 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: Holds client secrets of Entra apps that carry their own expiry (rotated at the source, as erp-client-secret); a vault-side expiry can make Key Vault refuse the secret and stop the app.
  parent: vault
  name: 'erp-booking-principals'
  properties: {
    value: empty(erpBookingPrincipals) ? '[]' : erpBookingPrincipals
    contentType: 'application/json'
  }
}

output name string = vault.name
// Version-less URIs: the app follows a rotated secret without a redeploy.
output erpClientSecretUri string = erpClientSecretEntry.properties.secretUri
output channelSecretsUri string = channelSecretsEntry.properties.secretUri
output erpWebhookClientStateUri string = erpWebhookClientStateEntry.properties.secretUri
output erpBookingPrincipalsUri string = erpBookingPrincipalsEntry.properties.secretUri
output secretNames array = [
  erpClientSecretEntry.name
  channelSecretsEntry.name
  erpWebhookClientStateEntry.name
  erpBookingPrincipalsEntry.name
]
