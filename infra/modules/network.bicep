// One VNet: Functions (Flex) integration subnet, Container Apps infrastructure subnet,
// PostgreSQL delegated subnet. Everything private talks inside it.
param location string
param vnetName string
param tags object = {}
param addressPrefix string = '10.40.0.0/16'
param functionSubnetPrefix string = '10.40.0.0/24'
param containerAppsSubnetPrefix string = '10.40.2.0/23'
param postgresSubnetPrefix string = '10.40.4.0/24'

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'snet-functions'
        properties: {
          addressPrefix: functionSubnetPrefix
          // Flex Consumption VNet integration uses the Microsoft.App/environments delegation
          // (not Microsoft.Web/serverFarms as classic App Service plans do).
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'snet-containerapps'
        properties: {
          // Workload-profiles environments need a /27 or larger subnet delegated to Microsoft.App/environments.
          addressPrefix: containerAppsSubnetPrefix
          delegations: [
            {
              name: 'container-apps'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'snet-postgres'
        properties: {
          addressPrefix: postgresSubnetPrefix
          delegations: [
            {
              name: 'postgres-flexible'
              properties: {
                serviceName: 'Microsoft.DBforPostgreSQL/flexibleServers'
              }
            }
          ]
        }
      }
    ]
  }
}

output vnetId string = vnet.id
output vnetName string = vnet.name
output functionSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, 'snet-functions')
output containerAppsSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, 'snet-containerapps')
output postgresSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, 'snet-postgres')
