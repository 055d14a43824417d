// Log Analytics workspace + workspace-based Application Insights.
param location string
param logAnalyticsName string
param appInsightsName string
param tags object = {}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    // Local (instrumentation-key) auth stays ON on purpose. With DisableLocalAuth=true, ingestion
    // accepts only Entra-authenticated telemetry: the Functions host would need
    // APPLICATIONINSIGHTS_AUTHENTICATION_STRING, and the azure-monitor-opentelemetry distro in the
    // inventory container (and in the Python worker) would need a credential passed in code
    // (configure_azure_monitor(credential=...)) plus the "Monitoring Metrics Publisher" role.
    // The connection string alone would then silently drop telemetry. The connection string holds
    // an instrumentation key (an identifier, not a secret). Flip this once the code passes a credential.
    DisableLocalAuth: false
  }
}

output workspaceId string = workspace.id
output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
output connectionString string = appInsights.properties.ConnectionString
