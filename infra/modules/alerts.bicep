// Average server response time of the Order Service's HTTP functions > 1 s.
//
// Metric choice: Flex Consumption apps do not emit the App Service HTTP platform metrics
// (AverageResponseTime / HttpResponseTime on Microsoft.Web/sites) that Consumption/Premium/Dedicated
// apps do, so the alert uses Application Insights' standard metric `requests/duration`
// ("Server response time", milliseconds) filtered to the function app's cloud role name.
//
// Window: the brief asks for ~30 s; a metric alert's smallest windowSize/evaluationFrequency is
// PT1M, so this fires when the 1-minute average exceeds 1 s, evaluated every minute. A true 30 s
// window would need a log search alert on `requests` (its minimum frequency is also 1 minute).
param alertName string
param appInsightsId string
@description('cloud_RoleName the function app reports (its site name)')
param functionAppName string
@description('Optional action group resource id; empty = alert without notifications')
param actionGroupId string = ''
param thresholdMilliseconds int = 1000
param tags object = {}

resource responseTimeAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: alertName
  location: 'global'
  tags: tags
  properties: {
    description: 'Order Service average server response time above ${thresholdMilliseconds} ms (1-minute window).'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT1M'
    autoMitigate: true
    targetResourceType: 'microsoft.insights/components'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'avg-server-response-time'
          metricNamespace: 'microsoft.insights/components'
          metricName: 'requests/duration'
          operator: 'GreaterThan'
          threshold: thresholdMilliseconds
          timeAggregation: 'Average'
          dimensions: [
            {
              name: 'cloud/roleName'
              operator: 'Include'
              values: [
                functionAppName
              ]
            }
          ]
        }
      ]
    }
    actions: empty(actionGroupId) ? [] : [
      {
        actionGroupId: actionGroupId
      }
    ]
  }
}

output alertId string = responseTimeAlert.id
