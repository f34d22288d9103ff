// One storage account for the Functions host (blob leases, keys, the deployment package) and
// the product's tables. Reached only with Microsoft Entra ID: shared key access is disabled,
// which the host allows because every storage setting uses the identity-based form
// (AzureWebJobsStorage__accountName) and Flex Consumption fetches the package with the
// app's identity.

@description('Azure region of the resources.')
param location string

@description('Storage account name: 3-24 lowercase letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Blob container that holds the deployment package (Flex Consumption).')
param deploymentContainerName string

@description('Replication. Zone-redundant by default: the tables hold orders not yet booked.')
@allowed([
  'Standard_ZRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
  'Standard_GRS'
  'Standard_RAGRS'
])
param skuName string = 'Standard_ZRS'

@description('Tags applied to every resource.')
param tags object = {}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration reaches storage over its public endpoint; access is Entra ID only (shared key disabled, RBAC roles per identity). Deny-by-default needs VNet integration plus private endpoints, which this template leaves out (README, Deploy to Azure).
  // checkov:skip=CKV_AZURE_206: skuName is a parameter whose @allowed values are all replicated (ZRS/GRS variants, never LRS); checkov does not evaluate parameters, tests/infra checks the list.
  // checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35: the public endpoint stays enabled, guarded by Entra ID authorization instead of keys.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    supportsHttpsTrafficOnly: true
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainer.name}'
