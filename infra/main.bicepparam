// Parameters for infra/main.bicep. Values that differ per person/subscription come from the
// environment so nothing personal or secret is committed:
//   export VALERIX_INVENTORY_IMAGE=<acr>.azurecr.io/valerix-inventory:<tag>
//   export VALERIX_ACR_NAME=<acr>                       # empty for a public image
//   export VALERIX_PG_ADMIN_OBJECT_ID=$(az ad signed-in-user show --query id -o tsv)
//   export VALERIX_PG_ADMIN_NAME=$(az ad signed-in-user show --query userPrincipalName -o tsv)
using './main.bicep'

param namePrefix = 'valerix'
param inventoryImage = readEnvironmentVariable('VALERIX_INVENTORY_IMAGE')
param acrName = readEnvironmentVariable('VALERIX_ACR_NAME', '')
param postgresAdminObjectId = readEnvironmentVariable('VALERIX_PG_ADMIN_OBJECT_ID')
param postgresAdminPrincipalName = readEnvironmentVariable('VALERIX_PG_ADMIN_NAME')
param postgresAdminPrincipalType = readEnvironmentVariable('VALERIX_PG_ADMIN_TYPE', 'User')
param postgresSkuName = 'Standard_D2ds_v5'
param orderApiAudience = readEnvironmentVariable('VALERIX_ORDER_API_AUDIENCE')
param inventoryApiAudience = readEnvironmentVariable('VALERIX_INVENTORY_API_AUDIENCE', 'api://valerix-inventory')
param dashboardClientId = readEnvironmentVariable('VALERIX_DASHBOARD_CLIENT_ID', '')
param alertActionGroupId = readEnvironmentVariable('VALERIX_ALERT_ACTION_GROUP_ID', '')
param gremlinMode = false
param schrodingerCrashRate = '0'
