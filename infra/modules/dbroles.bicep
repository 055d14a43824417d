// The apps' Entra database roles, created during the deployment from INSIDE the VNet.
//
// The PostgreSQL server is VNet-injected: it has no public endpoint and cannot get one. So the SQL
// (pgaadauth_create_principal + grants, valerix_common/db_roles.py) runs as a Container Apps job in the internal
// environment, i.e. in the Container Apps subnet, which resolves and reaches the server through the private DNS
// zone. The job runs as `adminIdentity`, an Entra administrator of the server (postgres.bicep), using the
// inventory image (it carries psycopg + azure-identity + valerix_common).
//
// ARM cannot start a job by itself, so a deployment script (management plane only: it never talks to the
// database, needs no VNet) starts one execution and waits for it; a failed execution fails the deployment.
// Re-running the deployment re-runs the job, which is idempotent.
param location string
param jobName string
param environmentId string
param image string
param registryServer string = ''
@description('Resource id of the identity that is the server\'s Entra administrator')
param adminIdentityId string
param adminIdentityClientId string
param adminPrincipalId string
@description('That identity\'s name = its role name on the server')
param adminRoleName string
param postgresFqdn string
@description('role=database pairs, e.g. id-orders-x=orders;id-inventory-x=inventory')
param roleGrants string
@description('Changes on every deployment so the script (and the job) run again')
param runTag string = utcNow()
param tags object = {}

var roleContributor = 'b24988ac-6180-42a0-ab88-20f7382dd24c'

resource job 'Microsoft.App/jobs@2024-03-01' = {
  name: jobName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${adminIdentityId}': {}
    }
  }
  properties: {
    environmentId: environmentId
    workloadProfileName: 'Consumption'
    configuration: {
      triggerType: 'Manual'
      replicaTimeout: 600
      replicaRetryLimit: 2
      manualTriggerConfig: {
        parallelism: 1
        replicaCompletionCount: 1
      }
      registries: empty(registryServer) ? [] : [
        {
          server: registryServer
          identity: adminIdentityId
        }
      ]
    }
    template: {
      containers: [
        {
          name: 'db-roles'
          image: image
          command: [
            'python'
            '-m'
            'valerix_common.db_roles'
          ]
          resources: {
            cpu: json('0.25')
            memory: '0.5Gi'
          }
          env: [
            {
              name: 'PGHOST'
              value: postgresFqdn
            }
            {
              name: 'PG_ADMIN_ROLE'
              value: adminRoleName
            }
            {
              name: 'AZURE_CLIENT_ID'
              value: adminIdentityClientId
            }
            {
              name: 'DB_ROLE_GRANTS'
              value: roleGrants
            }
          ]
        }
      ]
    }
  }
}

// The script's identity may start this one job and read its executions: Contributor on the job only.
resource startJobRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(job.id, adminIdentityId, roleContributor)
  scope: job
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleContributor)
    principalId: adminPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource runJob 'Microsoft.Resources/deploymentScripts@2023-08-01' = {
  name: '${jobName}-run'
  location: location
  tags: tags
  kind: 'AzureCLI'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${adminIdentityId}': {}
    }
  }
  properties: {
    azCliVersion: '2.63.0'
    forceUpdateTag: runTag
    retentionInterval: 'PT1H'
    cleanupPreference: 'OnSuccess'
    timeout: 'PT20M'
    environmentVariables: [
      {
        name: 'JOB_ID'
        value: job.id
      }
    ]
    // az rest: no CLI extension to install. Polls the execution until it ends; a non-zero exit fails the deployment.
    scriptContent: loadTextContent('dbroles-run.sh')
  }
  dependsOn: [
    startJobRole
  ]
}

output jobName string = job.name
output execution string = runJob.properties.outputs.execution
