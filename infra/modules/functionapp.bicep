// Order Service: Python 3.11 function app on Flex Consumption (FC1), user-assigned identity,
// identity-based host storage and Service Bus, VNet-integrated so it reaches the inventory's
// internal ingress and the private PostgreSQL server.
//
// Flex Consumption takes the runtime from functionAppConfig.runtime; FUNCTIONS_WORKER_RUNTIME,
// FUNCTIONS_EXTENSION_VERSION and WEBSITE_RUN_FROM_PACKAGE are not allowed as app settings there
// (they are rejected/ignored), and the package comes from functionAppConfig.deployment.storage.
param location string
param planName string
param functionAppName string
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerUrl string
param virtualNetworkSubnetId string
param appInsightsConnectionString string
param serviceBusFullyQualifiedNamespace string
param verifyQueueName string = 'verify-order'
@description('host:port of the inventory gRPC endpoint, e.g. <app>.<env-domain>:443')
param inventoryGrpcTarget string
param ordersDatabaseUrl string
param inventoryTimeoutSeconds string = '2'
@description('Token issuer and audience of API callers; the audience the managed identity asks the inventory token for')
param authIssuer string
param authAudience string
param inventoryAuthAudience string
@description('The dashboard\'s Entra sign-in (MSAL.js, authorization code + PKCE): its SPA client id, the authority and the API scope. Not secrets.')
param dashboardSigninClientId string = ''
param dashboardSigninAuthority string = ''
param dashboardSigninScope string = ''
param reconcileStaleAfterSeconds string = '30'
param reconcileGiveUpAfterSeconds string = '600'
@description('Six-field NCRONTAB. Every 5 minutes lets Flex Consumption scale to zero between runs; the reconciler is the fallback behind VerifyOrder and the events, not the main path.')
param reconcileSchedule string = '0 */5 * * * *'
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048
param maximumInstanceCount int = 100
param tags object = {}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

// Every value here is a plain setting or an identity reference: no keys, no connection strings
// for storage or Service Bus (tests/unit/infra/test_bicep.py enforces it).
var appSettings = {
  // Host storage through the user-assigned identity.
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // Service Bus trigger/sender through the same identity.
  ServiceBusConnection__fullyQualifiedNamespace: serviceBusFullyQualifiedNamespace
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identityClientId
  VERIFY_QUEUE_NAME: verifyQueueName
  // DefaultAzureCredential picks the user-assigned identity by client id (Postgres tokens).
  AZURE_CLIENT_ID: identityClientId
  POSTGRES_AUTH: 'entra'
  ORDERS_DATABASE_URL: ordersDatabaseUrl
  // PgBouncer tracks them (pgbouncer.max_prepared_statements, postgres.bicep).
  POSTGRES_PREPARED_STATEMENTS: 'true'
  INVENTORY_GRPC_TARGET: inventoryGrpcTarget
  // Container Apps ingress terminates TLS on 443.
  INVENTORY_GRPC_TLS: 'true'
  INVENTORY_TIMEOUT_SECONDS: inventoryTimeoutSeconds
  // bearer tokens (docs/identity.md): callers' tokens, and the identity's own token for the inventory
  AUTH_ISSUER: authIssuer
  AUTH_AUDIENCE: authAudience
  INVENTORY_AUTH_AUDIENCE: inventoryAuthAudience
  // the dashboard's sign-in (order_functions/interface/dashboard_signin.py); all empty: the token box only
  DASHBOARD_SIGNIN_CLIENT_ID: dashboardSigninClientId
  DASHBOARD_SIGNIN_AUTHORITY: dashboardSigninAuthority
  DASHBOARD_SIGNIN_SCOPE: dashboardSigninScope
  RECONCILE_STALE_AFTER_SECONDS: reconcileStaleAfterSeconds
  RECONCILE_GIVE_UP_AFTER_SECONDS: reconcileGiveUpAfterSeconds
  // read when the app is indexed (order_functions/interface/bus_functions.py)
  RECONCILE_SCHEDULE: reconcileSchedule
  // Admin endpoints are never enabled in Azure.
  ADMIN_API_ENABLED: 'false'
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'true'
  // grpcio in the app must not clash with the worker's own grpc.
  PYTHON_ISOLATE_WORKER_DEPENDENCIES: '1'
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    virtualNetworkSubnetId: virtualNetworkSubnetId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: appSettings
}

// Publishing credentials (basic auth) off for FTP and SCM: deployments use Entra.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output functionAppId string = functionApp.id
output functionAppName string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
