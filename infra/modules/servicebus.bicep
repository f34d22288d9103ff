// The Service Bus namespace and its entities. The entities and their properties come from
// infra/servicebus-topology.json, the file the local stand-in (and Microsoft's emulator) reads,
// so Azure and the local stack cannot drift apart. The emulator format already uses ISO 8601
// durations (PT1M), which is what ARM expects, so values are passed through unchanged.

@description('Azure region of the resources.')
param location string

@description('Namespace name: 6-50 letters, digits and hyphens, globally unique.')
@minLength(6)
@maxLength(50)
param name string

@description('Tags applied to every resource.')
param tags object = {}

// The topology file is also the emulator's config, and the emulator caps message time-to-live at
// one hour. In Azure an hour is too short: an ERP outage over a weekend would expire waiting
// orders into the dead-letter queue. Empty keeps the file's value.
@description('Default message time-to-live of every queue, topic and subscription (ISO 8601), overriding the topology file; empty keeps the file value.')
param messageTimeToLive string = 'P14D'

var topology = loadJsonContent('../servicebus-topology.json', '$.UserConfig.Namespaces[0]')

// Standard is the cheapest tier with topics and duplicate detection (the orders queue needs it).
resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

// RequiresDuplicateDetection and RequiresSession cannot change once an entity exists:
// changing them in the topology means a new entity name (or deleting the old one first).
resource queues 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = [for queue in topology.Queues: {
  parent: namespace
  name: queue.Name
  properties: {
    lockDuration: queue.Properties.LockDuration
    maxDeliveryCount: queue.Properties.MaxDeliveryCount
    defaultMessageTimeToLive: empty(messageTimeToLive) ? queue.Properties.DefaultMessageTimeToLive : messageTimeToLive
    deadLetteringOnMessageExpiration: queue.Properties.DeadLetteringOnMessageExpiration
    requiresDuplicateDetection: queue.Properties.RequiresDuplicateDetection
    duplicateDetectionHistoryTimeWindow: queue.Properties.DuplicateDetectionHistoryTimeWindow
    requiresSession: queue.Properties.RequiresSession
    forwardTo: empty(queue.Properties.ForwardTo) ? null : queue.Properties.ForwardTo
    forwardDeadLetteredMessagesTo: empty(queue.Properties.ForwardDeadLetteredMessagesTo) ? null : queue.Properties.ForwardDeadLetteredMessagesTo
  }
}]

// A module per topic because Bicep has no nested resource loops (topic -> subscriptions).
module topics 'servicebus-topic.bicep' = [for topic in topology.Topics: {
  name: 'topic-${topic.Name}'
  params: {
    namespaceName: namespace.name
    topic: topic
    messageTimeToLive: messageTimeToLive
  }
}]

output name string = namespace.name
// serviceBusEndpoint is https://<name>.servicebus.windows.net:443/ (another suffix in sovereign clouds).
output fullyQualifiedNamespace string = replace(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':443/', '')
