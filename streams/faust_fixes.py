"""Work-arounds for faust-streaming 0.15.3 behaviour that loses data.

Installed by `streams.faust_patches.install()` (the version fence), never
directly. Each says what and why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from faust.transport import consumer as faust_consumer

log = logging.getLogger(__name__)

_installed = False

# How long perform_seek waits for the fetch loop to finish handing over the
# message it is on (it stops at once when flow stops; this is only a bound).
_HANDOVER_WAIT_S = 10.0

_original_getmany = faust_consumer.Consumer.getmany


async def _getmany(self: faust_consumer.Consumer, timeout: float) -> AsyncIterator[Any]:  # noqa: ASYNC109 - Faust's signature
    """Faust's getmany, noting while the fetch loop is handing a message over.

    `_drain_messages` takes each (tp, message) from here, delivers it to the
    streams and only *then* records it as read (`_read_offset`), before it
    asks for the next one. `_delivering` is True over exactly that span, so
    `_perform_seek` can wait for the fetch loop to be out of it.
    """
    async for tp, message in _original_getmany(self, timeout):
        self._vs_delivering = True  # type: ignore[attr-defined]
        try:
            yield tp, message
        finally:
            self._vs_delivering = False  # type: ignore[attr-defined]


async def _perform_seek(self: faust_consumer.Consumer) -> None:
    """Seek every assigned partition to its committed offset, *including* 0/none,
    with the fetch loop stopped, and leave it stopped.

    1. aiokafka's `seek_to_committed` seeks only when the committed offset is
       > 0. After a rebalance Faust drops the messages it had fetched but not
       yet processed, then calls this to go back; for a partition whose group
       has committed nothing yet (a new deployment's first minutes) there was
       no seek, the fetch position stayed past the dropped messages, and they
       were never processed (found by tests/integration/test_worker.py: two
       workers starting together lost the first message of several
       partitions). So: seek to 0 then.

    2. The fetch loop must not deliver anything between this seek and the
       moment the recovery resumes the consumer. In 0.15.3, when no changelog
       has to be restored, `Recovery._restart_recovery` resumes the app's flow
       control *and the consumer* ("Resuming flow...") before
       `on_recovery_completed` resumes the stream partitions and awaits this
       seek; then it calls `app.flow_control.resume()`, which CLEARS every
       stream queue, and `consumer.resume_flow()`. So the fetch loop ran
       during the seek: it delivered messages from records fetched before the
       seek into queues that were cleared a moment later, and marked them
       read (`_read_offset`), so when they came again after the seek they
       were dropped as already read ("DROPPED MESSAGE ROFF"). Never processed,
       never in InfluxDB, and the next commit moved past them (seen in
       test_two_workers_share_partitions_and_survive_losing_one under load:
       partition 3 offsets 0-7 processed during the seek, 8 delivered then
       cleared, 9 delivered from the old records, then 0-8 dropped on the
       re-read). Upstream describes the same race for `_resume_streams`
       (faust-streaming #216, #253: "resuming the consumer after the flow
       control makes sure that we don't write data to the app which is then
       discarded").

       So: stop the consumer's flow (the fetch loop breaks out of its
       records and waits for `resume_flow`), wait until it has finished the
       message it was handing over (its `_read_offset` write must land before
       ours, not after), seek, forget the read offsets, and do *not* resume:
       every caller resumes the consumer itself once the queues are cleared
       (`Recovery.on_recovery_completed`/`_resume_streams` call
       `consumer.resume_flow()` right after `app.flow_control.resume()`;
       `Consumer.getmany` calls this only while flow is already stopped).
    """
    was_active = self.flow_active
    self.stop_flow()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _HANDOVER_WAIT_S
    while getattr(self, "_vs_delivering", False):  # noqa: ASYNC110
        if loop.time() >= deadline:
            # The fetch loop is stuck in a delivery: seek anyway (as upstream
            # would), but say so, since its read-offset write may now land
            # after ours and drop messages as already read.
            log.warning("faust seek: handover wait ran out, seeking during a delivery "
                        "wait_s=%.1f", _HANDOVER_WAIT_S)
            break
        await asyncio.sleep(0.005)
    try:
        committed = await self.seek_to_committed()
        for tp, offset in committed.items():
            if offset is None or offset <= 0:
                await self._seek(tp, 0)  # auto_offset_reset=earliest semantics
    except Exception:
        if was_active:  # as before the patch: a failed seek leaves flow as it was
            self.resume_flow()
        raise
    # Faust drops fetched messages below the "read offset" of a partition. After
    # a seek back, forget it (None: accept the next message whatever its offset).
    self._read_offset.update({faust_consumer.ensure_TP(tp): None for tp in committed})
    self._committed_offset.update(
        {faust_consumer.ensure_TP(tp): offset for tp, offset in committed.items() if offset}
    )


def install() -> None:
    global _installed
    if not _installed:
        faust_consumer.Consumer.perform_seek = _perform_seek  # type: ignore[method-assign]
        faust_consumer.Consumer.getmany = _getmany  # type: ignore[method-assign,assignment]
        _installed = True
