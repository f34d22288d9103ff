// One topic and its subscriptions, from one entry of servicebus-topology.json's "Topics".

@description('The Service Bus namespace that holds the topic.')
param namespaceName string

@description('The topic as written in servicebus-topology.json: Name, Properties, Subscriptions.')
param topic object

@description('Overrides the file\'s DefaultMessageTimeToLive (ISO 8601); empty keeps the file value.')
param messageTimeToLive string = ''

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: namespaceName
}

resource serviceBusTopic 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' = {
  parent: namespace
  name: topic.Name
  properties: {
    defaultMessageTimeToLive: empty(messageTimeToLive) ? topic.Properties.DefaultMessageTimeToLive : messageTimeToLive
    requiresDuplicateDetection: topic.Properties.RequiresDuplicateDetection
    duplicateDetectionHistoryTimeWindow: topic.Properties.DuplicateDetectionHistoryTimeWindow
  }
}

resource subscriptions 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = [for subscription in topic.Subscriptions: {
  parent: serviceBusTopic
  name: subscription.Name
  properties: {
    lockDuration: subscription.Properties.LockDuration
    maxDeliveryCount: subscription.Properties.MaxDeliveryCount
    defaultMessageTimeToLive: empty(messageTimeToLive) ? subscription.Properties.DefaultMessageTimeToLive : messageTimeToLive
    deadLetteringOnMessageExpiration: subscription.Properties.DeadLetteringOnMessageExpiration
    requiresSession: subscription.Properties.RequiresSession
    forwardTo: empty(subscription.Properties.ForwardTo) ? null : subscription.Properties.ForwardTo
    forwardDeadLetteredMessagesTo: empty(subscription.Properties.ForwardDeadLetteredMessagesTo) ? null : subscription.Properties.ForwardDeadLetteredMessagesTo
  }
}]
