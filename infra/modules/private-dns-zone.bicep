// A private DNS zone linked to the VNet, optionally with A records.
// Used for the PostgreSQL private zone and for the internal Container Apps environment's default
// domain (wildcard record -> the environment's static IP), so the VNet-integrated function app
// resolves <app>.<defaultDomain> to the internal ingress.
param zoneName string
param vnetId string
param tags object = {}
@description('A records to create: [{ name: \'*\', ipv4Address: \'10.0.0.4\' }]')
param aRecords array = []

resource zone 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: zoneName
  location: 'global'
  tags: tags
}

resource link 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: zone
  name: 'vnet-link'
  location: 'global'
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnetId
    }
  }
}

resource records 'Microsoft.Network/privateDnsZones/A@2020-06-01' = [for record in aRecords: {
  parent: zone
  name: record.name
  properties: {
    ttl: 300
    aRecords: [
      {
        ipv4Address: record.ipv4Address
      }
    ]
  }
}]

output zoneId string = zone.id
output zoneName string = zone.name
