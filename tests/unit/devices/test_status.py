"""Device status and Last Will parsing (devices/{device_id}/status)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.records import RejectReason
from devices.status import DeviceStatus, parse_status

NOW_MS = 1_700_000_000_000


def parse(payload: bytes):  # type: ignore[no-untyped-def]
    return parse_status(payload, device_id="wr-7", received_ms=NOW_MS)


def test_full_status() -> None:
    payload = json.dumps(
        {
            "online": True,
            "battery_pct": 81,
            "on_body": False,
            "firmware": "2.4.1",
            "ts": NOW_MS - 2000,
            "rssi": -60,
        }
    ).encode()
    result = parse(payload)
    assert result.rejections == []
    assert result.status == DeviceStatus("wr-7", NOW_MS - 2000, True, 81.0, False, "2.4.1")


@pytest.mark.parametrize("will", [b'{"online": false}', b"offline", b"OFFLINE\n"])
def test_last_will_means_offline_now(will: bytes) -> None:
    result = parse(will)
    assert result.status == DeviceStatus("wr-7", NOW_MS, False)


def test_device_status_without_online_means_online() -> None:
    status = parse(b'{"battery_pct": 15.5}').status
    assert status is not None and status.online is True and status.battery_pct == 15.5
    assert status.on_body is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", RejectReason.MALFORMED),
        (b"[1]", RejectReason.MALFORMED),
        (b'{"online": "no"}', RejectReason.MALFORMED),
        (b'{"on_body": 1}', RejectReason.MALFORMED),
        (b'{"battery_pct": "full"}', RejectReason.MALFORMED),
        (b'{"battery_pct": 140}', RejectReason.OUT_OF_RANGE),
        (b'{"battery_pct": NaN}', RejectReason.OUT_OF_RANGE),
        (b'{"ts": 1700000000}', RejectReason.TS_TOO_OLD),
        (b'{"ts": 1800000000000}', RejectReason.TS_FUTURE),
        (b"{", RejectReason.MALFORMED),
    ],
)
def test_bad_status_is_rejected(payload: bytes, reason: RejectReason) -> None:
    result = parse(payload)
    assert result.status is None
    assert [(r.reason, r.reading_index) for r in result.rejections] == [(reason, None)]


@settings(max_examples=300, deadline=None)
@given(
    payload=st.one_of(
        st.binary(max_size=64),
        st.dictionaries(
            st.sampled_from(["online", "battery_pct", "on_body", "firmware", "ts"]),
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(-(10**30), 10**30),
                st.floats(),
                st.text(max_size=5),
            ),
        ).map(lambda d: json.dumps(d).encode()),
    )
)
def test_status_never_raises(payload: bytes) -> None:
    result = parse(payload)
    assert (result.status is None) == bool(result.rejections)
    assert all(r.reason is not RejectReason.INTERNAL for r in result.rejections)
    if result.status is not None and result.status.battery_pct is not None:
        assert 0 <= result.status.battery_pct <= 100
