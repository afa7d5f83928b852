"""The Prometheus configuration of docker/prometheus/, rendered for a set of scrape targets.

One template serves the native test (loopback ports) and docker/compose.yaml
(service names); the alert rules (docker/prometheus/alerts.yml) are static.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from streams.ops.templates import DOCKER_DIR, render

RULES_FILE = DOCKER_DIR / "prometheus" / "alerts.yml"
JOBS = ("gateway", "worker", "notifier", "console")


def prometheus_config(targets: Mapping[str, Sequence[str]], rules_file: str = str(RULES_FILE),
                      scrape_interval: str = "15s") -> str:
    """prometheus.yml with `targets[job]` ("host:port" each) for every job in JOBS."""
    unknown = set(targets) - set(JOBS)
    if unknown:
        raise ValueError(f"unknown scrape jobs {sorted(unknown)} (known: {JOBS})")
    return render("prometheus/prometheus.yml.tmpl", scrape_interval=scrape_interval,
                  rules_file=rules_file,
                  **{f"{job}_targets": ", ".join(f'"{t}"' for t in targets.get(job, ()))
                     for job in JOBS})
