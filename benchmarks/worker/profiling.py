"""py-spy on the worker: a raw (collapsed stacks) profile, summarized by where
the time goes. py-spy is a dev tool: `pip install py-spy` into the venv."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

# Buckets, first match wins, tested against each frame of a stack from the
# leaf up: the innermost recognised frame names the cost.
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("state encode/decode (checkpoint)", ("pipeline/state.py",)),
    ("table write (rocksdb/changelog)", ("faust/stores/", "faust/tables/")),
    ("influx line building", ("sinks/points.py", "sinks/lineprotocol.py")),
    ("influx HTTP (aiohttp)", ("aiohttp/",)),
    ("json parse of inputs", ("pipeline/inputs.py",)),
    ("alert rules", ("analytics/alert", )),
    ("news2/anomaly", ("analytics/news2", "analytics/anomaly", "analytics/baseline")),
    ("window features", ("analytics/features",)),
    ("window add/close (numpy)", ("analytics/windows",)),
    ("pipeline glue (processor.py)", ("pipeline/processor.py",)),
    ("output records (pydantic/json)", ("streams/records.py", "pydantic")),
    ("worker runtime glue", ("streams/worker.py", "streams/worker_runtime.py")),
    ("faust stream/event machinery", ("faust/streams.py", "faust/events.py",
                                      "faust/transport/", "faust/channels.py",
                                      "faust/topics.py", "faust/agents/")),
    ("aiokafka client (fetch/produce)", ("aiokafka/",)),
    ("mode/asyncio event loop", ("mode/", "asyncio/", "selectors.py")),
)


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


def start_record(pid: int, out: Path, rate_hz: int = 100) -> subprocess.Popen[bytes] | None:
    exe = py_spy()
    if exe is None:
        return None
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--format", "raw",
                            "--rate", str(rate_hz), "--output", str(out), "--nonblocking"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_record(spy: subprocess.Popen[bytes] | None) -> None:
    """Stop sampling now (SIGINT makes py-spy write its output)."""
    if spy is None or spy.poll() is not None:
        return
    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(30)
    except subprocess.TimeoutExpired:
        spy.kill()


def bucket_of(stack: list[str]) -> str:
    for frame in reversed(stack):
        for name, needles in BUCKETS:
            if any(n in frame for n in needles):
                return name
    return "other"


def summarize(raw: Path, top: int = 15) -> dict[str, object]:
    """Share of samples per bucket, and the top self-time frames."""
    buckets: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        stack = stack_text.split(";")
        total += count
        buckets[bucket_of(stack)] += count
        leaves[_short(stack[-1])] += count
    if total == 0:
        return {"samples": 0}
    return {
        "samples": total,
        "buckets_pct": {k: round(100 * v / total, 1) for k, v in buckets.most_common()},
        "top_self_pct": {k: round(100 * v / total, 1) for k, v in leaves.most_common(top)},
    }


def _short(frame: str) -> str:
    # "func (path/to/site-packages/pkg/mod.py:123)" -> "func (pkg/mod.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})"
