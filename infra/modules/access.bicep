// Who may do what: the function app's managed identity gets the narrowest built-in role on
// each resource it touches, scoped to the resource (or the single entity / secret) rather
// than the resource group. This is the only file that grants access.

@description('Object id of the function app\'s system-assigned identity.')
param principalId string

@description('Storage account of the host and the product tables.')
param storageAccountName string

@description('Service Bus namespace whose entities come from servicebus-topology.json.')
param serviceBusNamespaceName string

@description('Key Vault that holds the app\'s secrets.')
param keyVaultName string

@description('Names of the secrets the app reads (Key Vault references in its settings).')
param secretNames array

@description('Application Insights component the app sends telemetry to with its identity.')
param appInsightsName string

// Built-in role definition ids (the same in every tenant).
var roleIds = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

var topology = loadJsonContent('../servicebus-topology.json', '$.UserConfig.Namespaces[0]')

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

// The host keeps leases, keys and timer state in blobs and creates its containers itself;
// Flex Consumption reads the deployment package with the same identity.
resource hostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roleIds.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The product's tables (prices, stock, orders, leases, sync state), created on first use.
resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roleIds.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

// Every queue is both fed and consumed by the app (intake -> booking, webhook -> processor,
// selftest probe -> recorder, stock events -> projection), so it sends and receives on each.
resource queues 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = [for queue in topology.Queues: {
  parent: namespace
  name: queue.Name
}]

resource queueSenders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (queue, i) in topology.Queues: {
  name: guid(queues[i].id, principalId, roleIds.serviceBusDataSender)
  scope: queues[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

resource queueReceivers 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (queue, i) in topology.Queues: {
  name: guid(queues[i].id, principalId, roleIds.serviceBusDataReceiver)
  scope: queues[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

// Topics carry events out to the storefronts: the app only publishes. Their subscriptions
// are read by the storefront integrations, which get their own identities and roles.
resource topics 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' existing = [for topic in topology.Topics: {
  parent: namespace
  name: topic.Name
}]

resource topicSenders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (topic, i) in topology.Topics: {
  name: guid(topics[i].id, principalId, roleIds.serviceBusDataSender)
  scope: topics[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource secrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = [for secretName in secretNames: {
  parent: vault
  name: secretName
}]

// Per secret, not per vault: the identity can read what its settings reference, nothing else.
resource secretReaders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (secretName, i) in secretNames: {
  name: guid(secrets[i].id, principalId, roleIds.keyVaultSecretsUser)
  scope: secrets[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// Application Insights has local (key) authentication disabled; telemetry is sent with Entra ID.
resource telemetryPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, roleIds.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
