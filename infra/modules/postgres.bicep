// PostgreSQL Flexible Server, private access only (VNet-injected, no public endpoint), Entra-only
// authentication, built-in PgBouncer on port 6432, databases `orders` and `inventory`.
//
// Why private access rather than "allow Azure services" firewall rule: the firewall rule
// 0.0.0.0 opens the server to every Azure tenant's outbound IPs; the function app reaches the
// VNet through Flex VNet integration and the inventory runs inside the VNet, so neither needs a
// public endpoint.
//
// Roles for the app identities are created by dbroles.bicep (a Container Apps job inside the VNet) running as
// the second Entra administrator below, a managed identity; the first is a human or group (parameter) for
// break-glass access from inside the VNet.
param location string
param serverName string
param delegatedSubnetId string
param privateDnsZoneId string
@description('Object id of the Entra user/group/service principal that administers the server')
param adminObjectId string
@description('Display name (UPN for a user, group name, or app name) of that principal')
param adminPrincipalName string
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param adminPrincipalType string = 'Group'
@description('Object (principal) id and name of the managed identity the database-roles job runs as')
param automationAdminPrincipalId string
param automationAdminName string
@description('General Purpose or Memory Optimized: the built-in PgBouncer is not available on Burstable.')
param skuName string = 'Standard_D2ds_v5'
@allowed([
  'GeneralPurpose'
  'MemoryOptimized'
])
param skuTier string = 'GeneralPurpose'
param postgresVersion string = '16'
param storageSizeGB int = 32
param tags object = {}

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: serverName
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuTier
  }
  properties: {
    version: postgresVersion
    authConfig: {
      activeDirectoryAuth: 'Enabled'
      passwordAuth: 'Disabled'
      tenantId: subscription().tenantId
    }
    network: {
      delegatedSubnetResourceId: delegatedSubnetId
      privateDnsZoneArmResourceId: privateDnsZoneId
      publicNetworkAccess: 'Disabled'
    }
    storage: {
      storageSizeGB: storageSizeGB
      autoGrow: 'Enabled'
    }
    backup: {
      backupRetentionDays: 7
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: {
      mode: 'Disabled'
    }
  }
}

// Server parameters and child resources are applied one after another (the server rejects
// concurrent updates), hence the explicit dependsOn chain.
resource pgbouncer 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'pgbouncer.enabled'
  properties: {
    value: 'true'
    source: 'user-override'
  }
}

// Both apps use server-side prepared statements (POSTGRES_PREPARED_STATEMENTS, on by default): PostgreSQL then
// skips parsing and planning each statement (the benchmark: about -30 % of its CPU per order). Through PgBouncer in
// transaction mode that needs PgBouncer >= 1.22 tracking protocol-level prepared statements, off (0) by default.
resource pgbouncerPreparedStatements 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'pgbouncer.max_prepared_statements'
  properties: {
    value: '200'
    source: 'user-override'
  }
  dependsOn: [
    pgbouncer
  ]
}

resource ordersDb 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: 'orders'
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
  dependsOn: [
    pgbouncerPreparedStatements
  ]
}

resource inventoryDb 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: 'inventory'
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
  dependsOn: [
    ordersDb
  ]
}

resource admin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: server
  name: adminObjectId
  properties: {
    principalName: adminPrincipalName
    principalType: adminPrincipalType
    tenantId: subscription().tenantId
  }
  dependsOn: [
    inventoryDb
  ]
}

resource automationAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: server
  name: automationAdminPrincipalId
  properties: {
    principalName: automationAdminName
    principalType: 'ServicePrincipal'
    tenantId: subscription().tenantId
  }
  dependsOn: [
    admin
  ]
}

output serverName string = server.name
output fqdn string = server.properties.fullyQualifiedDomainName
output pgbouncerPort int = 6432
output automationAdminName string = automationAdmin.properties.principalName
