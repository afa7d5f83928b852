"""The Faust fence (streams/faust_patches.py): exact versions, fingerprints of
every replaced upstream method, and each patch's behaviour pinned by a test
that fails when the patch is taken out."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import pytest
from faust.transport import consumer as faust_consumer

from streams import faust_fastpath, faust_fixes, faust_patches
from tests.unit.streams.test_faust_fixes import TP0, StubConsumer

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("method", sorted(faust_patches.REPLACED | faust_patches.RELIED_ON))
def test_upstream_source_of_every_patched_method_is_the_one_we_read(method):
    expected = (faust_patches.REPLACED | faust_patches.RELIED_ON)[method]
    assert faust_patches.fingerprint(*method) == expected, (
        f"{'.'.join(method)} changed upstream: re-read it and port streams/faust_fixes.py "
        "or streams/faust_fastpath.py before updating its hash in streams/faust_patches.py")


def test_pyproject_pins_exactly_the_fenced_versions():
    text = (ROOT / "pyproject.toml").read_text()
    assert f'"faust-streaming=={faust_patches.FAUST_VERSION}"' in text
    assert f'"mode-streaming=={faust_patches.MODE_VERSION}"' in text
    assert faust_patches.installed_versions() == {
        "faust-streaming": faust_patches.FAUST_VERSION,
        "mode-streaming": faust_patches.MODE_VERSION}


def test_install_refuses_another_faust_version(monkeypatch):
    monkeypatch.setattr(faust_patches, "installed_versions",
                        lambda: {"faust-streaming": "0.16.0", "mode-streaming": "0.7.1"})
    with pytest.raises(faust_patches.FaustVersionError, match="faust-streaming 0.16.0"):
        faust_patches.install()


def test_install_replaces_every_listed_method():
    faust_patches.install()
    assert faust_consumer.Consumer.perform_seek is faust_fixes._perform_seek
    assert faust_consumer.Consumer.getmany is faust_fixes._getmany
    assert faust_consumer.Consumer._drain_messages is faust_fastpath._drain_messages
    names = {name for _, _, name in faust_patches.REPLACED}
    assert names == {"perform_seek", "getmany", "_drain_messages"}


async def test_the_seek_waits_for_the_message_being_handed_over():
    """Without the handover wait the seek runs while the fetch loop is still
    delivering, and its read-offset write lands after ours."""
    c = StubConsumer({TP0: 3})
    c._vs_delivering = True
    order: list[str] = []
    seek = c.seek_to_committed

    async def seek_to_committed():
        order.append("seek")
        return await seek()

    c.seek_to_committed = seek_to_committed

    async def finish_delivery():
        await asyncio.sleep(0.05)
        order.append("delivered")
        c._vs_delivering = False

    done = asyncio.ensure_future(finish_delivery())
    await faust_fixes._perform_seek(c)  # type: ignore[arg-type]
    await done
    assert order == ["delivered", "seek"]


async def test_a_handover_wait_that_runs_out_says_so(monkeypatch, caplog):
    monkeypatch.setattr(faust_fixes, "_HANDOVER_WAIT_S", 0.02)
    c = StubConsumer({TP0: 3})
    c._vs_delivering = True  # never ends
    with caplog.at_level(logging.WARNING, logger="streams.faust_fixes"):
        await faust_fixes._perform_seek(c)  # type: ignore[arg-type]
    assert "handover wait ran out" in caplog.text
    assert c.seeks == [(TP0, 3)]  # and it still seeks


def test_the_fast_path_keeps_the_roff_diagnostic_without_patient_data():
    import inspect

    source = inspect.getsource(faust_fastpath._drain_messages)
    (call,) = re.findall(r'self\.log\.dev\("DROPPED MESSAGE ROFF[^)]*\)', source)
    assert "message.value" not in call and "message.key" not in call
