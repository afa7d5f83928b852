"""Work-arounds for faust-streaming 0.15.3 behaviour that loses data.

Installed once by `streams.app.create_app`. Each says what and why.
"""

from __future__ import annotations

from faust.transport import consumer as faust_consumer

_installed = False


async def _perform_seek(self: faust_consumer.Consumer) -> None:
    """Seek every assigned partition to its committed offset, *including* 0/none.

    aiokafka's `seek_to_committed` seeks only when the committed offset is
    > 0. After a rebalance Faust drops the messages it had fetched but not
    yet processed, then calls this to go back; for a partition whose group
    has committed nothing yet (a new deployment's first minutes) there was no
    seek, the fetch position stayed past the dropped messages, and they were
    never processed (found by tests/integration/test_worker.py: two workers
    starting together lost the first message of several partitions).
    """
    committed = await self.seek_to_committed()
    for tp, offset in committed.items():
        if offset is None or offset <= 0:
            await self._seek(tp, 0)  # auto_offset_reset=earliest semantics
    # Faust drops fetched messages below the "read offset" of a partition. After
    # a seek back, forget it (None: accept the next message whatever its offset)
    # rather than trusting a value the fetch loop may still be about to write.
    self._read_offset.update({faust_consumer.ensure_TP(tp): None for tp in committed})
    self._committed_offset.update(
        {faust_consumer.ensure_TP(tp): offset for tp, offset in committed.items() if offset}
    )


def install() -> None:
    global _installed
    if not _installed:
        faust_consumer.Consumer.perform_seek = _perform_seek  # type: ignore[method-assign]
        _installed = True
