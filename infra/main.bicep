// Everything the function app needs in one resource group: Flex Consumption function app,
// storage (host + product tables), Service Bus (entities from servicebus-topology.json), Key
// Vault (secrets), Application Insights on Log Analytics, and the role assignments that tie
// them together. No connection string, account key or SAS is created or stored anywhere:
// every connection is the app's managed identity.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p @my.parameters.json
//
// See README.md, "Deploy to Azure".

targetScope = 'resourceGroup'

@description('Azure region (one that offers Flex Consumption: az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@description('Short name used in every resource name, e.g. "erpsync".')
@minLength(3)
@maxLength(16)
param baseName string = 'erpsync'

@description('Tags applied to every resource.')
param tags object = {}

// Business Central.
@description('Business Central API base URL.')
param erpBaseUrl string = 'https://api.businesscentral.dynamics.com'

@description('Entra ID tenant of the Business Central environment (GUID or domain).')
param erpTenant string

@description('Business Central environment name.')
param erpEnvironment string = 'production'

@description('Business Central company id (GUID).')
@minLength(36)
@maxLength(36)
param erpCompanyId string

@description('Publisher of the custom API pages the product calls.')
param erpApiPublisher string = 'contoso'

@description('API group of the custom API pages.')
param erpApiGroup string = 'commerceSync'

@description('Version of the custom API pages.')
param erpApiVersion string = 'v1.0'

@description('Application (client) id of the Entra ID app registration allowed to call Business Central.')
param erpClientId string

@description('Client secret of that app registration. Stored in Key Vault only.')
@secure()
param erpClientSecret string

@description('clientState for Business Central webhook subscriptions (16-2048 characters). Stored in Key Vault only.')
@secure()
@minLength(16)
@maxLength(2048)
param erpWebhookClientState string

@description('More Entra apps sharing the booking of orders (Business Central counts its limits per principal): JSON [{"clientId": ..., "clientSecret": ...}]; empty = the default app alone. Stored in Key Vault only.')
@secure()
param erpBookingPrincipals string = ''

// Storefronts.
@description('Storefront channels as JSON (see shared/config/channels.py), e.g. {"web": {"locations": "*", ...}}.')
param channels string

@description('Webhook signing secret per channel, JSON {"channel": "secret"}. Stored in Key Vault only.')
@secure()
param channelSecrets string

@description('Base URL of the storefront platform that receives catalog webhooks.')
param storefrontBaseUrl string

@description('Currency of the ERP\'s amounts (ISO 4217).')
param localCurrency string = 'USD'

@description('Currencies sold, comma-separated.')
param soldCurrencies string = 'USD,EUR'

@description('Which campaign prices a customer may get.')
@allowed([
  'open-to-all'
  'active-for-customer'
])
param pricingCampaignPolicy string = 'active-for-customer'

@description('JSON deep-merged over the shipped sync policy (shared/config/sync_policy.json); empty = as shipped.')
param syncPolicy string = ''

// Hosting.
@description('Instances kept warm for the HTTP functions; 0 allows scale to zero (and cold starts).')
@minValue(0)
@maxValue(20)
param alwaysReadyHttpInstances int = 1

@description('Memory per instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound of scale-out (Flex Consumption allows 40-1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Storage replication (never LRS: the tables hold accepted orders).')
@allowed([
  'Standard_ZRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
  'Standard_GRS'
  'Standard_RAGRS'
])
param storageSkuName string = 'Standard_ZRS'

@description('Default message time-to-live of every Service Bus entity (ISO 8601). The topology file keeps the emulator\'s one-hour cap; this is what Azure gets.')
param serviceBusMessageTimeToLive string = 'P14D'

@description('App settings to add or override without editing this file (schedules, thresholds). Never put secrets here: add them to Key Vault and reference them.')
param appSettingOverrides object = {}

var suffix = uniqueString(subscription().id, resourceGroup().id, baseName)
var appName = 'func-${baseName}-${suffix}'
var deploymentContainerName = 'app-package'

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    workspaceName: 'log-${baseName}-${suffix}'
    appInsightsName: 'appi-${baseName}-${suffix}'
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    name: 'st${suffix}'
    deploymentContainerName: deploymentContainerName
    skuName: storageSkuName
    tags: tags
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    location: location
    name: 'sb-${baseName}-${suffix}'
    messageTimeToLive: serviceBusMessageTimeToLive
    tags: tags
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    name: 'kv-${suffix}'
    erpClientSecret: erpClientSecret
    channelSecrets: channelSecrets
    erpWebhookClientState: erpWebhookClientState
    erpBookingPrincipals: erpBookingPrincipals
    tags: tags
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    name: appName
    planName: 'plan-${baseName}-${suffix}'
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    alwaysReadyHttpInstances: alwaysReadyHttpInstances
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    tags: tags
  }
}

module access 'modules/access.bicep' = {
  name: 'access'
  params: {
    principalId: functionApp.outputs.principalId
    storageAccountName: storage.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    keyVaultName: keyVault.outputs.name
    secretNames: keyVault.outputs.secretNames
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

// Every setting shared/config/settings.py reads, in its Azure form (tests/infra checks the list
// against the settings model). Connections are identity-based (__accountName,
// __fullyQualifiedNamespace); secrets are Key Vault references.
var appSettings = {
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
  // The Python worker configures the Azure Monitor OpenTelemetry distro (it must be in
  // requirements.txt) and makes the host's trace context current for each invocation.
  PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'true'
  AzureWebJobsStorage__accountName: storage.outputs.name
  ServiceBusConnection__fullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
  APP_ENV: 'cloud'
  TABLE_PREFIX: ''
  ERP_BASE_URL: erpBaseUrl
  ERP_TENANT: erpTenant
  ERP_ENVIRONMENT: erpEnvironment
  ERP_COMPANY_ID: erpCompanyId
  ERP_API_PUBLISHER: erpApiPublisher
  ERP_API_GROUP: erpApiGroup
  ERP_API_VERSION: erpApiVersion
  ERP_AUTH_MODE: 'client_credentials'
  ERP_CLIENT_ID: erpClientId
  ERP_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.erpClientSecretUri})'
  // Static tokens are for a developer's shell; Azure uses client credentials.
  ERP_STATIC_TOKEN: ''
  // More Entra apps sharing the booking of orders (BC's limits are per principal), from Key
  // Vault: [{"clientId": ..., "clientSecret": ...}]; [] = the default app alone.
  ERP_BOOKING_PRINCIPALS: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.erpBookingPrincipalsUri})'
  ERP_TIMEOUT_SECONDS: '10'
  // Deep-merged over shared/config/sync_policy.json (timer schedules, staleness bounds); '' = as shipped.
  SYNC_POLICY: syncPolicy
  LOCAL_CURRENCY: localCurrency
  SOLD_CURRENCIES: soldCurrencies
  PRICING_CAMPAIGN_POLICY: pricingCampaignPolicy
  CREDIT_OVERDUE_TOLERANCE: '0'
  CREDIT_ERP_TIMEOUT_SECONDS: '5'
  ORDER_IDEMPOTENCY_RETENTION_HOURS: '24'
  ORDER_INTAKE_TIMEOUT_SECONDS: '90'
  ORDER_BOOKING_MAX_ATTEMPTS: '8'
  ORDER_BOOKING_RETRY_BASE_SECONDS: '15'
  ORDER_BOOKING_RETRY_MAX_SECONDS: '600'
  ORDER_BOOKING_CLAIM_SECONDS: '180'
  CHANNELS: channels
  CHANNEL_SECRETS: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.channelSecretsUri})'
  STOREFRONT_BASE_URL: storefrontBaseUrl
  STOREFRONT_TIMEOUT_SECONDS: '30'
  STOREFRONT_MAX_RETRY_AFTER_SECONDS: '30'
  CONTENT_RUN_BUDGET_SECONDS: '300'
  CONTENT_ERP_PAGE_SIZE: '5000'
  CONTENT_ERP_LOOKUP_SIZE: '100'
  CONTENT_BATCH_SIZE: '500'
  STOCK_LOW_STOCK_LEVEL: '5'
  STOCK_SAFETY_STOCK: '0'
  STOCK_HOLD_TIMEOUT_SECONDS: '120'
  AVAILABILITY_MAX_SKUS: '100'
  ERP_WEBHOOK_URL: 'https://${functionApp.outputs.defaultHostName}/api/erp/notifications'
  ERP_WEBHOOK_CLIENT_STATE: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.erpWebhookClientStateUri})'
  ERP_WEBHOOK_RESOURCES: 'itemAvailabilityByLocation,items,priceListLines,salesOrders,salesShipments,salesInvoices,salesCreditMemos,salesShipmentTracking'
}

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: appName
}

// Applied after the role assignments, so Key Vault references and the identity-based
// connections resolve on the first start instead of failing until the next restart.
resource siteAppSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov evaluates every sites/config resource as if it were the 'web' or 'authsettings' config; this one holds only app settings. Each check is covered elsewhere or does not apply:
  // checkov:skip=CKV_AZURE_13: No App Service Authentication: storefronts call with function keys and Business Central webhooks cannot obtain Entra tokens for this app; operations routes need the admin key.
  // checkov:skip=CKV_AZURE_63: HTTP logs of App Service are not available on Flex Consumption; requests and failures go to Application Insights.
  // checkov:skip=CKV_AZURE_65: Detailed error pages are an App Service (IIS) feature; the app answers problem+json and logs to Application Insights.
  // checkov:skip=CKV_AZURE_66: Failed request tracing is an App Service (IIS) feature; failed requests are in Application Insights.
  // checkov:skip=CKV_AZURE_80: A Python app, no .NET Framework version to pin.
  // checkov:skip=CKV_AZURE_88: Flex Consumption runs the package from the blob deployment container; there is no Azure Files content share.
  // checkov:skip=CKV_AZURE_222: Public network access is a property of the site (see modules/functionapp.bicep for why it stays enabled).
  parent: site
  name: 'appsettings'
  dependsOn: [
    functionApp
    access
  ]
  properties: union(appSettings, appSettingOverrides)
}

output functionAppName string = appName
output functionAppHostName string = functionApp.outputs.defaultHostName
output storageAccountName string = storage.outputs.name
output serviceBusNamespace string = serviceBus.outputs.fullyQualifiedNamespace
output keyVaultName string = keyVault.outputs.name
