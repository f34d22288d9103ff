// The function app on the Flex Consumption plan (Linux, Python 3.13). The app has a
// system-assigned managed identity and no connection string or key anywhere: the
// deployment package is read with the identity too. App settings are applied separately in
// main.bicep, after the identity's role assignments exist.

@description('Azure region of the resources.')
param location string

@description('Function app name (also the default host name prefix), globally unique.')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('URL of the blob container that holds the deployment package.')
param deploymentContainerUrl string

@description('Instances kept warm for the HTTP functions (the "http" group). 0 scales HTTP to zero and brings cold starts back to the storefront routes.')
@minValue(0)
@maxValue(20)
param alwaysReadyHttpInstances int = 1

@description('Memory per instance in MB (Flex Consumption sizes).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound of scale-out: also a bound on the bill and on concurrent calls into the ERP.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Concurrent HTTP invocations per instance. The handlers are async, so one instance serves many requests.')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 16

@description('Tags applied to every resource.')
param tags object = {}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Zone redundancy on Flex Consumption is a regional opt-in with a higher always-ready bill; the state that matters lives in zone-redundant storage and Service Bus.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: The app is an HTTP API for storefronts on the internet and receives Business Central webhooks, so it must be publicly reachable; routes are protected by function/admin keys or the webhook clientState.
  // checkov:skip=CKV_AZURE_17: Neither storefront platforms nor Business Central webhooks can present client certificates; storefront routes need a function key, operations routes the admin key.
  // checkov:skip=CKV_AZURE_212: numberOfWorkers belongs to dedicated plans; Flex Consumption scales each function group on demand, and alwaysReady keeps HTTP instances warm.
  // checkov:skip=CKV_AZURE_213: /api/health reports dependencies (tables, Service Bus); evicting instances during a dependency outage would shrink capacity without fixing anything, and Flex Consumption replaces failed instances itself.
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
      cors: {
        allowedOrigins: []
      }
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        alwaysReady: (alwaysReadyHttpInstances > 0) ? [
          {
            name: 'http'
            instanceCount: alwaysReadyHttpInstances
          }
        ] : []
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'python'
        version: '3.13'
      }
    }
  }
}

// No basic-auth (publishing profile) deployments: publishing uses Microsoft Entra ID.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output principalId string = site.identity.principalId
output defaultHostName string = site.properties.defaultHostName
