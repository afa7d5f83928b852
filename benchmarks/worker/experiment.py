"""Run `vitalstream worker` with a what-if change applied in this process only,
to measure a recommendation before anyone edits streams/ (benchmark harness
only; nothing here is used by the product).

    VITALSTREAM_BENCH_EXPERIMENT=batch1m,stockfetch python -m benchmarks.worker.experiment worker

- batch1m: Faust producer batches up to 1 MiB with a 5 ms linger (default 16 kB);
- gcdefault: CPython's default garbage-collector thresholds instead of the
  worker's (streams/commands/worker.py);
- stockfetch: Faust's own fetch loop (four tasks per message), without
  streams/faust_fastpath.py, to measure what that patch gives;
- profile: cProfile the whole run, written to $VITALSTREAM_BENCH_PROFILE_OUT.
Checkpoint interval needs no patch: VITALSTREAM_WORKER__CHECKPOINT_INTERVAL_S.
"""

from __future__ import annotations

import os
import sys
from typing import Any

ENV = "VITALSTREAM_BENCH_EXPERIMENT"


def _batch1m() -> None:
    import faust

    original = faust.App

    def app(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("producer_max_batch_size", 1 << 20)
        kwargs.setdefault("producer_linger", 0.005)
        return original(*args, **kwargs)

    faust.App = app  # type: ignore[misc]


def _stockfetch() -> None:
    from streams import faust_fastpath

    faust_fastpath.install = lambda: None  # type: ignore[assignment]


def main() -> int:
    wanted = {w for w in os.environ.get(ENV, "").split(",") if w}
    if "batch1m" in wanted:
        _batch1m()
    if "stockfetch" in wanted:
        _stockfetch()
    if "gcdefault" in wanted:  # CPython's default thresholds, not the worker's own
        from streams.commands import worker as worker_command

        worker_command.tune_gc = lambda: None  # type: ignore[assignment]
    from streams.cli import main as cli_main

    if "profile" in wanted:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            return cli_main(sys.argv[1:])
        finally:
            profiler.disable()
            profiler.dump_stats(os.environ.get("VITALSTREAM_BENCH_PROFILE_OUT", "worker.prof"))
    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
