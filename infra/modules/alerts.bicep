// Order Service average API response time > 1 s: a log search alert over the span the app itself emits for
// every HTTP call (response-time.kql explains which table it lands in).
//
// Why not the `requests/duration` metric: in host.json `telemetryMode: OpenTelemetry` the Functions host exports
// logs and traces, not its standard metrics, so a metric alert on it may never fire; Flex Consumption also has no
// App Service HTTP metrics. tests/integration/telemetry/test_alert_signal.py feeds the span the code really emits through the
// Azure Monitor exporter's own mapping and checks that this query selects it.
//
// Window: 1 minute, evaluated every minute (the shortest log-alert frequency; the brief's 30 s window is the
// dashboard's, bin(timestamp, 30s)).
param alertName string
param location string
param appInsightsId string
@description('Optional action group resource id; empty = alert without notifications')
param actionGroupId string = ''
param thresholdMilliseconds int = 1000
@description('The checkout budget the function app runs with (its inventoryTimeoutSeconds), stated in the alert')
param checkoutBudgetSeconds string = '2'
param tags object = {}

resource responseTimeAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: alertName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: alertName
    description: 'Order Service average API response time above ${thresholdMilliseconds} ms (1-minute window). The customer\'s promise: every POST /orders is answered within the ${checkoutBudgetSeconds} s budget (INVENTORY_TIMEOUT_SECONDS, counted from arrival) + 0.1 s.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT1M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: loadTextContent('response-time.kql')
          timeAggregation: 'Average'
          metricMeasureColumn: 'duration'
          operator: 'GreaterThan'
          threshold: thresholdMilliseconds
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: empty(actionGroupId) ? [] : [
        actionGroupId
      ]
    }
  }
}

output alertId string = responseTimeAlert.id
