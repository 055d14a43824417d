// Valerix: Order Service (Azure Functions, Flex Consumption) + Inventory Service (Container Apps,
// gRPC) + PostgreSQL Flexible Server + Service Bus, all keyless (managed identities + Entra).
//
//   az deployment group create -g <rg> -f infra/main.bicep -p infra/main.bicepparam
//
// See infra/README.md for the full order (image build, deployment, code publish, smoke test).
targetScope = 'resourceGroup'

@description('Region for every resource (must offer Flex Consumption: az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@description('Short prefix for resource names.')
@minLength(3)
@maxLength(10)
param namePrefix string = 'valerix'

@description('Inventory container image, e.g. <acr>.azurecr.io/valerix-inventory:<tag>.')
param inventoryImage string

@description('Name of an existing Azure Container Registry in this resource group holding the image; empty for a public image.')
param acrName string = ''

@description('Object id of the Entra user or group that administers PostgreSQL (creates the app roles).')
param postgresAdminObjectId string

@description('Name of that principal (UPN for a user, display name for a group).')
param postgresAdminPrincipalName string

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param postgresAdminPrincipalType string = 'User'

@description('General Purpose SKU: PgBouncer is not offered on Burstable.')
param postgresSkuName string = 'Standard_D2ds_v5'

@description('Application ID URI (or client id) of the Order API app registration: the audience of callers\' tokens.')
param orderApiAudience string

@description('Application ID URI of the Inventory API app registration: the audience of the Order Service\'s token.')
param inventoryApiAudience string = 'api://valerix-inventory'

@description('Client id of the dashboard\'s single-page-application registration (docs/identity.md "The dashboard"). Empty: the page signs nobody in and offers only its token box.')
param dashboardClientId string = ''

@description('The Order API\'s delegated scope the dashboard asks Entra ID for.')
param dashboardScope string = '${orderApiAudience}/access_as_user'

@description('Optional action group id for the response-time alert.')
param alertActionGroupId string = ''

@description('Chaos switches for the inventory service: off in Azure unless a drill turns them on.')
param gremlinMode bool = false
param schrodingerCrashRate string = '0'

param tags object = {
  app: 'valerix'
}

var suffix = take(uniqueString(resourceGroup().id), 6)
var base = '${namePrefix}-${suffix}'
var verifyQueueName = 'verify-order'
var functionAppName = 'func-${base}'
var postgresServerName = 'psql-${base}'
var storageAccountName = take(toLower(replace('st${namePrefix}${suffix}', '-', '')), 24)
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}'
var roleAcrPull = '7f951dda-4ed3-4680-a7ca-43fe172d538d'
// Entra ID v2 tokens of this tenant (docs/identity.md)
var tokenIssuer = '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
// where the dashboard's MSAL.js signs people in (the same tenant)
var signinAuthority = '${environment().authentication.loginEndpoint}${tenant().tenantId}'
var registryServer = empty(acrName) ? '' : '${acrName}${environment().suffixes.acrLoginServer}'

// ---------------------------------------------------------------- identities
resource functionIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-orders-${base}'
  location: location
  tags: tags
}

resource inventoryIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-inventory-${base}'
  location: location
  tags: tags
}

// Entra administrator of PostgreSQL for automation: the database-roles job runs as it (modules/dbroles.bicep).
resource dbAdminIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-pgadmin-${base}'
  location: location
  tags: tags
}

// ---------------------------------------------------------------- shared infrastructure
module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    logAnalyticsName: 'log-${base}'
    appInsightsName: 'appi-${base}'
    tags: tags
  }
}

module network 'modules/network.bicep' = {
  name: 'network'
  params: {
    location: location
    vnetName: 'vnet-${base}'
    tags: tags
  }
}

module postgresDns 'modules/private-dns-zone.bicep' = {
  name: 'postgres-dns'
  params: {
    zoneName: '${postgresServerName}.private.postgres.database.azure.com'
    vnetId: network.outputs.vnetId
    tags: tags
  }
}

module postgres 'modules/postgres.bicep' = {
  name: 'postgres'
  params: {
    location: location
    serverName: postgresServerName
    delegatedSubnetId: network.outputs.postgresSubnetId
    privateDnsZoneId: postgresDns.outputs.zoneId
    adminObjectId: postgresAdminObjectId
    adminPrincipalName: postgresAdminPrincipalName
    adminPrincipalType: postgresAdminPrincipalType
    skuName: postgresSkuName
    skuTier: 'GeneralPurpose'
    automationAdminPrincipalId: dbAdminIdentity.properties.principalId
    automationAdminName: dbAdminIdentity.name
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    storageAccountName: storageAccountName
    deploymentContainerName: deploymentContainerName
    functionPrincipalId: functionIdentity.properties.principalId
    tags: tags
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    location: location
    namespaceName: 'sb-${base}'
    queueName: verifyQueueName
    functionPrincipalId: functionIdentity.properties.principalId
    inventoryPrincipalId: inventoryIdentity.properties.principalId
    tags: tags
  }
}

// ---------------------------------------------------------------- inventory (Container Apps)
resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = if (!empty(acrName)) {
  name: acrName
}

resource inventoryAcrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(acrName)) {
  name: guid(resourceGroup().id, acrName, inventoryIdentity.id, roleAcrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleAcrPull)
    principalId: inventoryIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource dbAdminAcrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(acrName)) {
  name: guid(resourceGroup().id, acrName, dbAdminIdentity.id, roleAcrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleAcrPull)
    principalId: dbAdminIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

module containerAppsEnvironment 'modules/containerapps-environment.bicep' = {
  name: 'containerapps-environment'
  params: {
    location: location
    environmentName: 'cae-${base}'
    infrastructureSubnetId: network.outputs.containerAppsSubnetId
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    tags: tags
  }
}

// The Entra roles of both app identities, created inside the VNet before either app starts (no public access).
module dbRoles 'modules/dbroles.bicep' = {
  name: 'dbroles'
  params: {
    location: location
    jobName: 'job-dbroles-${suffix}'
    environmentId: containerAppsEnvironment.outputs.environmentId
    image: inventoryImage
    registryServer: registryServer
    adminIdentityId: dbAdminIdentity.id
    adminIdentityClientId: dbAdminIdentity.properties.clientId
    adminPrincipalId: dbAdminIdentity.properties.principalId
    adminRoleName: postgres.outputs.automationAdminName
    postgresFqdn: postgres.outputs.fqdn
    roleGrants: '${functionIdentity.name}=orders;${inventoryIdentity.name}=inventory'
    tags: tags
  }
  dependsOn: [
    dbAdminAcrPull
  ]
}

module containerApps 'modules/containerapps.bicep' = {
  name: 'containerapps'
  params: {
    location: location
    environmentId: containerAppsEnvironment.outputs.environmentId
    containerAppName: 'ca-inventory-${suffix}'
    image: inventoryImage
    registryServer: registryServer
    identityId: inventoryIdentity.id
    identityClientId: inventoryIdentity.properties.clientId
    // Entra role name = identity name (created by pgaadauth_create_principal, see README); port 6432 = PgBouncer.
    inventoryDatabaseUrl: 'postgresql://${inventoryIdentity.name}@${postgres.outputs.fqdn}:6432/inventory?sslmode=require'
    appInsightsConnectionString: monitoring.outputs.connectionString
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    authIssuer: tokenIssuer
    authAudience: inventoryApiAudience
    // only the Order Service's identity may call (client id in azp/appid, object id in oid)
    allowedCallers: '${functionIdentity.properties.clientId},${functionIdentity.properties.principalId}'
    gremlinMode: gremlinMode
    schrodingerCrashRate: schrodingerCrashRate
    minReplicas: 1
    tags: tags
  }
  dependsOn: [
    inventoryAcrPull
    dbRoles
  ]
}

// Internal environment: its default domain must resolve inside the VNet (wildcard -> static IP).
module containerAppsDns 'modules/private-dns-zone.bicep' = {
  name: 'containerapps-dns'
  params: {
    zoneName: containerAppsEnvironment.outputs.defaultDomain
    vnetId: network.outputs.vnetId
    aRecords: [
      {
        name: '*'
        ipv4Address: containerAppsEnvironment.outputs.staticIp
      }
    ]
    tags: tags
  }
}

// ---------------------------------------------------------------- order service (Functions)
module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    planName: 'plan-${base}'
    functionAppName: functionAppName
    identityId: functionIdentity.id
    identityClientId: functionIdentity.properties.clientId
    storageAccountName: storage.outputs.storageAccountName
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    virtualNetworkSubnetId: network.outputs.functionSubnetId
    appInsightsConnectionString: monitoring.outputs.connectionString
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    verifyQueueName: serviceBus.outputs.queueName
    inventoryGrpcTarget: '${containerApps.outputs.fqdn}:443'
    ordersDatabaseUrl: 'postgresql://${functionIdentity.name}@${postgres.outputs.fqdn}:6432/orders?sslmode=require'
    authIssuer: tokenIssuer
    authAudience: orderApiAudience
    inventoryAuthAudience: inventoryApiAudience
    dashboardSigninClientId: dashboardClientId
    dashboardSigninAuthority: signinAuthority
    dashboardSigninScope: dashboardScope
    tags: tags
  }
  dependsOn: [
    containerAppsDns
    dbRoles
  ]
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    alertName: 'alert-${base}-response-time'
    location: location
    appInsightsId: monitoring.outputs.appInsightsId
    actionGroupId: alertActionGroupId
    thresholdMilliseconds: 1000
    tags: tags
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  params: {
    location: location
    appInsightsId: monitoring.outputs.appInsightsId
    tags: tags
  }
}

// ---------------------------------------------------------------- outputs for scripts
output checkoutBaseUrl string = 'https://${functionApp.outputs.defaultHostName}/api'
output functionAppName string = functionApp.outputs.functionAppName
output containerAppName string = containerApps.outputs.containerAppName
output containerAppsEnvironmentName string = containerAppsEnvironment.outputs.environmentName
output dbRolesJobName string = dbRoles.outputs.jobName
output inventoryGrpcTarget string = '${containerApps.outputs.fqdn}:443'
output postgresServerName string = postgres.outputs.serverName
output postgresFqdn string = postgres.outputs.fqdn
output functionIdentityName string = functionIdentity.name
output functionIdentityClientId string = functionIdentity.properties.clientId
output inventoryIdentityName string = inventoryIdentity.name
output inventoryIdentityClientId string = inventoryIdentity.properties.clientId
output serviceBusNamespace string = serviceBus.outputs.fullyQualifiedNamespace
output verifyQueueName string = serviceBus.outputs.queueName
output reservationTopicName string = serviceBus.outputs.reservationTopicName
output orderTopicName string = serviceBus.outputs.orderTopicName
output storageAccountName string = storage.outputs.storageAccountName
output appInsightsName string = monitoring.outputs.appInsightsName
output vnetName string = network.outputs.vnetName
