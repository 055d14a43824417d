#!/usr/bin/env bash
# Deployment script (modules/dbroles.bicep): start one execution of the database-roles job and wait for it.
# Environment: JOB_ID (the job's resource id); AZ_SCRIPTS_OUTPUT_PATH is set by the deployment script service.
set -eu
api=2024-03-01
name=""
for attempt in 1 2 3 4 5 6; do
  # a fresh role assignment can take a minute to apply: retry the start, not the whole deployment
  name=$(az rest --method post --url "${JOB_ID}/start?api-version=${api}" --query name -o tsv) && break
  echo "starting the job was refused (attempt ${attempt}), retrying in 20 s" >&2
  sleep 20
done
[ -n "${name}" ] || { echo "could not start the database roles job" >&2; exit 1; }
echo "started execution ${name}"
for i in $(seq 1 110); do
  status=$(az rest --method get --url "${JOB_ID}/executions/${name}?api-version=${api}" --query properties.status -o tsv)
  echo "execution ${name}: ${status}"
  case "${status}" in
    Succeeded) echo "{\"execution\": \"${name}\", \"status\": \"${status}\"}" > "${AZ_SCRIPTS_OUTPUT_PATH}"; exit 0 ;;
    Failed|Stopped|Degraded) echo "database roles job ${name} ended ${status}: see its logs" >&2; exit 1 ;;
  esac
  sleep 10
done
echo "database roles job ${name} did not finish in time" >&2
exit 1
