// Service Bus namespace (Standard: duplicate detection needs Standard or Premium) with local
// (SAS) auth disabled, and the verify-order queue. The function app identity gets Data Sender
// (HTTP path + reconciler enqueue VerifyOrder) and Data Receiver (the queue trigger), scoped to the queue.
param location string
param namespaceName string
param queueName string = 'verify-order'
@description('Principal id of the function app\'s identity')
param functionPrincipalId string
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

output namespaceName string = namespace.name
output queueName string = queue.name
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
