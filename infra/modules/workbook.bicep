// Application Insights workbook with the same panels as the live dashboard (/api/dashboard).
param location string
param appInsightsId string
param displayName string = 'Valerix - orders and inventory'
param tags object = {}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // workbook names must be GUIDs; stable per resource group so redeployments update it in place
  name: guid(resourceGroup().id, 'valerix-workbook')
  location: location
  kind: 'shared'
  tags: tags
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: loadTextContent('../workbooks/valerix-dashboard.json')
    version: '1.0'
  }
}

output workbookId string = workbook.id
