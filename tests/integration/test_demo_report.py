"""`vitalstream demo` end to end on a small cohort, and its HTML report drawn
in a real browser (Debian's headless Chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from streams.demo.report import SERIES_COLOURS

pytestmark = pytest.mark.integration

WEARABLE_AND_SCORE = ("heart_rate", "respiratory_rate", "spo2", "body_temperature", "news2")


def screenshot(html: Path, png: Path, profile: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is needed (make setup installs it)"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
         "--window-size=1000,2400", f"--screenshot={png}", html.resolve().as_uri()],
        check=True, timeout=120, capture_output=True,
    )


def coloured_pixels(png: Path) -> dict[str, int]:
    image = Image.open(png).convert("RGB")
    wanted = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)): name
              for name, c in SERIES_COLOURS.items()}
    counts = dict.fromkeys(SERIES_COLOURS, 0)
    for rgb, n in ((rgb, n) for n, rgb in image.getcolors(maxcolors=1 << 20)):
        if rgb in wanted:
            counts[wanted[rgb]] += n
    return counts


def assert_reconciles(out: str) -> None:
    """Every reading the simulator had PUBACKed is in Kafka or dead-lettered, and
    every one in Kafka is a point in InfluxDB or overwrote one (same identity)."""
    sim = re.search(r"published (\d+) messages, (\d+) readings \(0 failed\)", out)
    assert sim, out[-3000:]
    first = re.search(r"^published (\d+) = in Kafka (\d+) \+ dead-lettered (\d+)$", out, re.M)
    second = re.search(r"^in Kafka (\d+) = in InfluxDB (\d+) \+ overwritten (\d+)$", out, re.M)
    assert first and second, out[-3000:]
    published, kafka, dead = map(int, first.groups())
    kafka_again, influx, overwritten = map(int, second.groups())
    assert published == int(sim.group(2)) and kafka == kafka_again
    assert published == kafka + dead, out[-3000:]
    assert kafka == influx + overwritten, out[-3000:]
    assert "reconciled: every published reading is accounted for" in out, out[-3000:]


def test_demo_summarizes_and_its_report_draws_every_plot(tmp_path: Path) -> None:
    report = tmp_path / "demo.html"
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", "--patients", "9", "--hours", "1.5",
         "--speed", "240", "--seed", "11", "--out", str(report)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "readings in InfluxDB (vitals)" in out and "alert events" in out
    assert_reconciles(out)
    html = report.read_text()
    # Wearable vitals and NEWS2 for every patient; blood pressure only when the
    # plotted patient has a bedside monitor (the simulator decides per seed).
    for name in WEARABLE_AND_SCORE:
        assert f'data-series="{name}"' in html, f"no {name} chart in the report"

    png = tmp_path / "report.png"
    screenshot(report, png, tmp_path / "chromium-profile")
    drawn = coloured_pixels(png)
    # Each plotted line leaves a trail of its own colour on screen (a chart
    # with no data, or a broken SVG, leaves none).
    missing = [name for name in WEARABLE_AND_SCORE if drawn[name] < 150]
    assert not missing, f"lines not drawn: {missing} ({drawn})"
