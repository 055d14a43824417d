// Internal (VNet-only) Container Apps environment + the inventory gRPC service.
param location string
param environmentName string
param containerAppName string
param infrastructureSubnetId string
param logAnalyticsWorkspaceId string
@description('Full image reference, e.g. myacr.azurecr.io/valerix-inventory:1.0.0')
param image string
@description('Login server of the registry the image lives in (e.g. myacr.azurecr.io); empty for a public image')
param registryServer string = ''
@description('Resource id of the inventory user-assigned identity')
param identityId string
@description('Client id of the inventory user-assigned identity (AZURE_CLIENT_ID for DefaultAzureCredential)')
param identityClientId string
param inventoryDatabaseUrl string
param appInsightsConnectionString string
param gremlinMode bool = false
param gremlinMinDelaySeconds string = '2'
param gremlinMaxDelaySeconds string = '5'
param gremlinPattern string = ''
param schrodingerCrashRate string = '0'
param minReplicas int = 1
param maxReplicas int = 3
param tags object = {}

var grpcPort = 50051
var healthPort = 8081

resource environment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: environmentName
  location: location
  tags: tags
  properties: {
    vnetConfiguration: {
      infrastructureSubnetId: infrastructureSubnetId
      // internal: the environment gets only a private static IP inside the VNet.
      internal: true
    }
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
    ]
    // Logs go through the diagnostic setting below (no workspace shared key in the template).
    appLogsConfiguration: {
      destination: 'azure-monitor'
    }
    zoneRedundant: false
  }
}

resource environmentLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: environment
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

resource inventory 'Microsoft.App/containerApps@2024-03-01' = {
  name: containerAppName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    environmentId: environment.id
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        // Reachable only from inside the environment's VNet (the function app via VNet integration).
        external: false
        // gRPC needs end-to-end HTTP/2.
        transport: 'http2'
        targetPort: grpcPort
        allowInsecure: false
        traffic: [
          {
            latestRevision: true
            weight: 100
          }
        ]
      }
      registries: empty(registryServer) ? [] : [
        {
          server: registryServer
          identity: identityId
        }
      ]
    }
    template: {
      containers: [
        {
          name: 'inventory'
          image: image
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
          env: [
            {
              name: 'INVENTORY_GRPC_PORT'
              value: string(grpcPort)
            }
            {
              name: 'INVENTORY_HEALTH_PORT'
              value: string(healthPort)
            }
            {
              name: 'INVENTORY_DATABASE_URL'
              value: inventoryDatabaseUrl
            }
            {
              name: 'POSTGRES_AUTH'
              value: 'entra'
            }
            {
              // PgBouncer tracks them (pgbouncer.max_prepared_statements, postgres.bicep).
              name: 'POSTGRES_PREPARED_STATEMENTS'
              value: 'true'
            }
            {
              name: 'AZURE_CLIENT_ID'
              value: identityClientId
            }
            {
              name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
              value: appInsightsConnectionString
            }
            {
              name: 'OTEL_SERVICE_NAME'
              value: 'inventory-service'
            }
            {
              name: 'GREMLIN_MODE'
              value: gremlinMode ? 'true' : 'false'
            }
            {
              name: 'GREMLIN_MIN_DELAY_S'
              value: gremlinMinDelaySeconds
            }
            {
              name: 'GREMLIN_MAX_DELAY_S'
              value: gremlinMaxDelaySeconds
            }
            {
              name: 'GREMLIN_PATTERN'
              value: gremlinPattern
            }
            {
              name: 'SCHRODINGER_CRASH_RATE'
              value: schrodingerCrashRate
            }
          ]
          // Container Apps probes are HTTP or TCP only (no gRPC probe): the inventory serves
          // GET /health on a side port from the same check as grpc.health.v1.
          probes: [
            {
              type: 'Startup'
              httpGet: {
                path: '/health'
                port: healthPort
                scheme: 'HTTP'
              }
              periodSeconds: 3
              failureThreshold: 20
            }
            {
              type: 'Liveness'
              httpGet: {
                path: '/health'
                port: healthPort
                scheme: 'HTTP'
              }
              periodSeconds: 10
              timeoutSeconds: 3
              failureThreshold: 3
            }
            {
              type: 'Readiness'
              httpGet: {
                path: '/health'
                port: healthPort
                scheme: 'HTTP'
              }
              periodSeconds: 5
              timeoutSeconds: 3
              failureThreshold: 2
            }
          ]
        }
      ]
      scale: {
        // Never scale to zero: a cold start would blow the 2 s checkout budget.
        minReplicas: minReplicas
        maxReplicas: maxReplicas
      }
    }
  }
  dependsOn: [
    environmentLogs
  ]
}

output environmentId string = environment.id
output environmentName string = environment.name
output defaultDomain string = environment.properties.defaultDomain
output staticIp string = environment.properties.staticIp
output containerAppName string = inventory.name
output fqdn string = inventory.properties.configuration.ingress.fqdn
