#!/usr/bin/env bash
# Installs the Debian packages the native stack needs, only those missing.
# Called by `make setup`; safe to run again. Needs root or sudo on a fresh machine.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
have mosquitto        || need+=(mosquitto)
have mosquitto_pub    || need+=(mosquitto-clients)
have influxd          || need+=(influxdb)
have victoria-metrics || need+=(victoria-metrics)
have kcat             || need+=(kcat)
have java             || need+=(openjdk-17-jre-headless)
have mvn              || need+=(maven)
# The demo report is checked in a real browser (tests/integration/test_demo_report.py).
have chromium         || need+=(chromium)
# The ward console is tested in that browser through Selenium (tests/integration/test_console_browser.py).
have chromedriver     || need+=(chromium-driver)
# Metrics and alert rules are checked with the real Prometheus (tests/integration/test_metrics.py).
have prometheus       || need+=(prometheus)
# The research export is loaded into a real PostgreSQL in tests/integration/test_exports.py.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "installing Debian packages: ${need[*]}"
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
# The packages' own init scripts must not start system-wide daemons on the
# default ports: the project starts its own instances (vitalstream stack up).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  created_policy=1
fi
trap '[ "$created_policy" = 1 ] && $sudo rm -f "$policy"' EXIT
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
