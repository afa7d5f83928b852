"""`python -m benchmarks.worker.floor`: what Faust itself costs per event.

A do-nothing agent (`noack_take` batches, each event acknowledged, nothing
else) drains the worker benchmark's 1 s backlog, with the app settings of
`vitalstream worker`, in two variants in the same run:

- stock: faust-streaming 0.15.3's own fetch loop;
- fastpath: with streams/faust_fastpath.py (the worker's default).

The worker can never be faster than this on the same machine: it is the
ceiling for one-reading-per-second device messages through Faust. Each
variant runs in its own process (Faust's Worker owns the process), which
prints one JSON line with its rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.common import env as benv
from benchmarks.common.kafka import create_topics, delete_topics, produce
from benchmarks.common.load import Fleet, backlog
from benchmarks.common.stats import table
from streams.connections import kafka_client_kwargs
from streams.settings import Settings
from streams.topics import VITALS_NORMALIZED, topic_name

VARIANTS = ("stock", "fastpath")


def run_agent(topic: str, expected: int, variant: str, timeout_s: float) -> None:
    """In the child process: drain `topic` with a do-nothing agent, print the rate."""
    from faust.worker import Worker

    from streams import app as app_module
    from streams import faust_fastpath

    if variant == "stock":
        faust_fastpath.install = lambda: None  # type: ignore[assignment]
    app = app_module.create_app(Settings(), store="memory://")
    source = app.topic(topic)
    state: dict[str, float] = {"n": 0}

    @app.agent(source, concurrency=1)
    async def drain(stream):  # type: ignore[no-untyped-def]
        async for events in stream.noack_take(500, within=0.2):
            state.setdefault("t0", time.monotonic())
            for event in events:
                await stream.ack(event)
            state["n"] += len(events)
            if state["n"] >= expected:
                seconds = time.monotonic() - state["t0"]
                print(json.dumps({"variant": variant, "events": state["n"], "seconds": seconds,
                                  "events_per_s": state["n"] / seconds}), flush=True)
                os._exit(0)  # Faust's shutdown takes seconds and measures nothing

    @app.timer(interval=timeout_s)
    async def give_up() -> None:
        if time.monotonic() - state.get("t0", time.monotonic()) >= timeout_s:
            print(json.dumps({"variant": variant, "error": "timeout", "events": state["n"]}),
                  flush=True)
            os._exit(1)

    Worker(app, loglevel="error", quiet=True).execute_from_commandline()


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.worker.floor")
    p.add_argument("--patients", type=int, default=500)
    p.add_argument("--duration-s", type=int, default=120)
    p.add_argument("--timeout-s", type=float, default=300)
    p.add_argument("--agent", nargs=3, metavar=("TOPIC", "EXPECTED", "VARIANT"),
                   help=argparse.SUPPRESS)  # the child process
    args = p.parse_args()
    if args.agent:
        run_agent(args.agent[0], int(args.agent[1]), args.agent[2], args.timeout_s)
        return 0
    settings = Settings()
    run_id = benv.new_run_id()
    prefix = benv.topic_prefix(run_id)
    topic = topic_name(VITALS_NORMALIZED, prefix)
    kafka = kafka_client_kwargs(settings.kafka, "admin")
    asyncio.run(create_topics(kafka, settings.kafka.partitions, prefix))
    now = int(time.time() * 1000)
    messages, _, _ = asyncio.run(produce(
        kafka, topic, backlog(Fleet(run_id, args.patients), now - 3_600_000, args.duration_s, 1)))
    rows = []
    try:
        for variant in VARIANTS:
            app_id = benv.worker_app_id(run_id) + "-" + variant
            child_env = {**os.environ, "VITALSTREAM_WORKER__APP_ID": app_id,
                         "VITALSTREAM_WORKER__DATA_DIR": tempfile.mkdtemp(prefix="vs-floor-")}
            out = subprocess.run([sys.executable, "-m", "benchmarks.worker.floor", "--agent",
                                  topic, str(messages), variant, "--timeout-s", str(args.timeout_s)],
                                 env=child_env, capture_output=True, text=True,
                                 timeout=args.timeout_s + 120)
            # Faust's worker draws a spinner (terminal escapes) before our line.
            lines = [ln[ln.index('{"variant"'):] for ln in out.stdout.splitlines()
                     if '{"variant"' in ln]
            result = json.loads(lines[-1]) if lines else {
                "variant": variant, "error": f"exit {out.returncode}: {(out.stderr or out.stdout)[-800:]}"}
            rows.append(result)
            print(json.dumps(result), flush=True)
    finally:
        asyncio.run(delete_topics(kafka, prefix, benv.worker_app_id(run_id) + "-"))
    ok = [r for r in rows if "events_per_s" in r]
    base = next((r["events_per_s"] for r in ok if r["variant"] == "stock"), None)
    print(table(["Faust agent (no work)", "events", "seconds", "events/s", "vs stock"], [
        (r["variant"], r["events"], round(r["seconds"], 2), r["events_per_s"],
         f"{r['events_per_s'] / base:.2f}x" if base else "-") for r in ok]))
    return 0 if len(ok) == len(VARIANTS) else 1


if __name__ == "__main__":
    raise SystemExit(main())
