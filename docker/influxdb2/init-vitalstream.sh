#!/bin/bash
# InfluxDB 2.x: the tiers of docs/analysts.md ("Tiers") and the users of
# the processes and Grafana. Run once by the influxdb image's entrypoint after
# its DOCKER_INFLUXDB_INIT_* setup (org "vitalstream", bucket "vitalstream"
# = the raw tier with DOCKER_INFLUXDB_INIT_RETENTION, admin influx_admin and
# the operator token, both from the compose init step's files).
# Written for docker/compose.yaml; not run here (no Docker engine): see README.
set -euo pipefail
org="${DOCKER_INFLUXDB_INIT_ORG}"
raw="${DOCKER_INFLUXDB_INIT_BUCKET}"

bucket_id() { influx bucket list --org "$org" --name "$1" --hide-headers | cut -f1; }

# The aggregated tiers: 1-minute aggregates for a year, 1-hour for ten.
influx bucket create --org "$org" --name "${raw}_m1" --retention 8760h
influx bucket create --org "$org" --name "${raw}_h1" --retention 87600h

# DBRP mappings: InfluxQL names database "vitalstream" and retention policies
# raw (the default), m1, h1, exactly as on InfluxDB 1.x, so the dashboards'
# queries serve both.
influx v1 dbrp create --org "$org" --db vitalstream --rp raw --bucket-id "$(bucket_id "$raw")" --default
influx v1 dbrp create --org "$org" --db vitalstream --rp m1 --bucket-id "$(bucket_id "${raw}_m1")"
influx v1 dbrp create --org "$org" --db vitalstream --rp h1 --bucket-id "$(bucket_id "${raw}_h1")"

# The dashboards' tier choice (streams/tiers.py, TIER_CHOICE_QUERY), kept
# forever, under the retention-policy name it has on InfluxDB 1.x.
influx bucket create --org "$org" --name "${raw}_tier_choice" --retention 0
influx v1 dbrp create --org "$org" --db vitalstream --rp tier_choice \
  --bucket-id "$(bucket_id "${raw}_tier_choice")"
influx write --org "$org" --bucket "${raw}_tier_choice" --precision ms \
  --file /etc/vitalstream/influxdb2/tier_choice.lp

# The tasks that fill the aggregated tiers (generated from streams/tiers.py).
for task in /etc/vitalstream/influxdb2/tasks/*.flux; do
  influx task create --org "$org" --file "$task"
done

# The release audit of research exports (InfluxQL database vitalstream_audit).
influx bucket create --org "$org" --name "${raw}_audit" --retention 0
influx v1 dbrp create --org "$org" --db vitalstream_audit --rp autogen \
  --bucket-id "$(bucket_id "${raw}_audit")" --default

# The v1 users the vitalstream processes and Grafana authenticate as, with the
# privileges they have on InfluxDB 1.x (streams/ops/influx_users.py): passwords
# from the compose init step (`vitalstream compose init`).
secret() { cat "/etc/vitalstream/secrets/influxdb/$1.password"; }
reads=(--read-bucket "$(bucket_id "$raw")" --read-bucket "$(bucket_id "${raw}_m1")"
       --read-bucket "$(bucket_id "${raw}_h1")" --read-bucket "$(bucket_id "${raw}_tier_choice")")
# Whatever writes points (worker's points follower, notifier's audit, console's
# manual observations): the raw tier only.
influx v1 auth create --org "$org" --username influx_writer --password "$(secret influx_writer)" \
  --write-bucket "$(bucket_id "$raw")"
# Research exports: read the tiers, write their release audit.
influx v1 auth create --org "$org" --username influx_exporter --password "$(secret influx_exporter)" \
  "${reads[@]}" --read-bucket "$(bucket_id "${raw}_audit")" --write-bucket "$(bucket_id "${raw}_audit")"
# Analysts, Grafana, the console's history: read only.
influx v1 auth create --org "$org" --username influx_reader --password "$(secret influx_reader)" \
  "${reads[@]}"
