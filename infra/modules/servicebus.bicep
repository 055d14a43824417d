// Service Bus namespace (Standard: duplicate detection and topics need Standard or Premium) with local
// (SAS) auth disabled; the verify-order queue and the event topics of the transactional outboxes.
// Roles, each scoped to the one entity that needs it:
//   function app: Sender + Receiver on verify-order (enqueue VerifyOrder / the trigger), Receiver on
//                 reservation-events/order-service, Sender on order-events, Receiver on order-events/notifications;
//   inventory:    Sender on reservation-events.
param location string
param namespaceName string
param queueName string = 'verify-order'
@description('Principal id of the function app\'s identity')
param functionPrincipalId string
@description('Principal id of the inventory\'s identity')
param inventoryPrincipalId string
param reservationTopicName string = 'reservation-events'
param orderTopicName string = 'order-events'
param tags object = {}

var roleServiceBusDataSender = '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
var roleServiceBusDataReceiver = '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: namespaceName
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

resource queue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: queueName
  properties: {
    // The VerifyOrder handler's own deadline is 15 s; a 1 minute peek-lock covers it (the host
    // renews the lock anyway, up to host.json maxAutoLockRenewalDuration).
    lockDuration: 'PT1M'
    maxDeliveryCount: 10
    // message_id is derived from the order id: repeats within the window are dropped.
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P1D'
    requiresSession: false
    enablePartitioning: false
    enableBatchedOperations: true
  }
}

// Events (transactional outbox relays, at-least-once; consumers are idempotent by event id). Duplicate detection
// drops a relay's re-send of the same event id within the window.
var topicProperties = {
  requiresDuplicateDetection: true
  duplicateDetectionHistoryTimeWindow: 'PT10M'
  defaultMessageTimeToLive: 'P7D'
  enablePartitioning: false
  enableBatchedOperations: true
  supportOrdering: true
}
var subscriptionProperties = {
  lockDuration: 'PT1M'
  maxDeliveryCount: 10
  deadLetteringOnMessageExpiration: true
  defaultMessageTimeToLive: 'P7D'
  requiresSession: false
}

resource reservationTopic 'Microsoft.ServiceBus/namespaces/topics@2022-10-01-preview' = {
  parent: namespace
  name: reservationTopicName
  properties: topicProperties
}

resource orderServiceSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2022-10-01-preview' = {
  parent: reservationTopic
  name: 'order-service'
  properties: subscriptionProperties
}

resource orderTopic 'Microsoft.ServiceBus/namespaces/topics@2022-10-01-preview' = {
  parent: namespace
  name: orderTopicName
  properties: topicProperties
}

resource notificationsSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2022-10-01-preview' = {
  parent: orderTopic
  name: 'notifications'
  properties: subscriptionProperties
}

resource senderRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, functionPrincipalId, roleServiceBusDataSender)
  scope: queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleServiceBusDataSender)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource receiverRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, functionPrincipalId, roleServiceBusDataReceiver)
  scope: queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleServiceBusDataReceiver)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource inventoryReservationSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(reservationTopic.id, inventoryPrincipalId, roleServiceBusDataSender)
  scope: reservationTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleServiceBusDataSender)
    principalId: inventoryPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource functionReservationReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(orderServiceSubscription.id, functionPrincipalId, roleServiceBusDataReceiver)
  scope: orderServiceSubscription
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleServiceBusDataReceiver)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource functionOrderEventsSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(orderTopic.id, functionPrincipalId, roleServiceBusDataSender)
  scope: orderTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleServiceBusDataSender)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The notifications add-on ships inside the function app, so the same identity receives its subscription.
resource functionNotificationsReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(notificationsSubscription.id, functionPrincipalId, roleServiceBusDataReceiver)
  scope: notificationsSubscription
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleServiceBusDataReceiver)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output namespaceName string = namespace.name
output queueName string = queue.name
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
output reservationTopicName string = reservationTopic.name
output orderTopicName string = orderTopic.name
