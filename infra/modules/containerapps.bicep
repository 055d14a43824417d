// The inventory gRPC service in the internal Container Apps environment.
param location string
@description('Resource id of the internal Container Apps environment')
param environmentId string
param containerAppName string
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
@description('Service Bus namespace host name: the inventory publishes reservation-events there')
param serviceBusFullyQualifiedNamespace string
@description('Token issuer, audience and allowed caller ids for the caller check (inventory_service/middleware/auth.py)')
param authIssuer string
param authAudience string
param allowedCallers string
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
    environmentId: environmentId
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        // In an INTERNAL environment `external: true` means "reachable from the VNet" (the environment has only a
        // private IP); `external: false` would limit it to apps of this environment, and the VNet-integrated
        // function app would get 404 from the environment proxy (microsoft/azure-container-apps#1714, #1391).
        external: true
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
              // the same identity-based connection setting the function app uses (azure-identity, AZURE_CLIENT_ID)
              name: 'ServiceBusConnection__fullyQualifiedNamespace'
              value: serviceBusFullyQualifiedNamespace
            }
            {
              // bound to [::], the inventory refuses to start without these
              name: 'INVENTORY_AUTH_ISSUER'
              value: authIssuer
            }
            {
              name: 'INVENTORY_AUTH_AUDIENCE'
              value: authAudience
            }
            {
              name: 'INVENTORY_ALLOWED_CALLERS'
              value: allowedCallers
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
              // failureThreshold is 1..10 in the Container Apps API: 10 x 3 s = 30 s to start (migrations + seed)
              initialDelaySeconds: 2
              periodSeconds: 3
              timeoutSeconds: 3
              failureThreshold: 10
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
}

output containerAppName string = inventory.name
output fqdn string = inventory.properties.configuration.ingress.fqdn
