"""Status messages and Last Wills through the ingestor; the metrics text."""

from __future__ import annotations

import base64
import json

from devices.decoding import ValidationLimits
from devices.gateway import Gateway, GatewayConfig
from devices.ingest import Ingestor
from devices.pseudonym import Pseudonymizer
from devices.records import DeviceStatusRecord, RejectReason
from devices.registry import DeviceRegistry, write_registry_file

KEY = b"k" * 32
NOW_MS = 1_700_000_000_000


def ingestor(tmp_path) -> Ingestor:  # noqa: ANN001
    path = tmp_path / "reg.json"
    write_registry_file(path, [{"device": "d1", "patient_id": "MRN-1", "ward": "W1", "bed": "2"}])
    return Ingestor(DeviceRegistry(Pseudonymizer(KEY), path), ValidationLimits())


def test_status_of_an_enrolled_device_carries_pseudonym_and_ward(tmp_path) -> None:  # noqa: ANN001
    ing = ingestor(tmp_path)
    payload = json.dumps({"online": True, "battery_pct": 55, "on_body": False,
                          "firmware": "1.2", "ts": NOW_MS - 1000}).encode()
    result = ing.ingest("devices/d1/status", payload, NOW_MS)
    assert result.batch is None and not result.dead_letters
    wire = json.loads(result.status.to_bytes())  # type: ignore[union-attr]
    assert wire == {"v": 1, "device": "d1", "pid": Pseudonymizer(KEY).pseudonym("MRN-1"),
                    "ward": "W1", "online": True, "battery_pct": 55.0, "on_body": False,
                    "firmware": "1.2", "ts_ms": NOW_MS - 1000,
                    "msg_id": wire["msg_id"], "received_ms": NOW_MS}
    assert "MRN-1" not in result.status.to_bytes().decode()  # type: ignore[union-attr]
    DeviceStatusRecord.model_validate(wire)  # the wire form is a valid record
    assert ing.accepted_statuses == 1


def test_last_will_of_an_unknown_device_has_no_pseudonym(tmp_path) -> None:  # noqa: ANN001
    result = ingestor(tmp_path).ingest("devices/spare-7/status", b"offline", NOW_MS)
    status = result.status
    assert status is not None and status.online is False and status.pid is None
    assert status.ts_ms == NOW_MS


def test_rejected_status_is_dead_lettered_with_raw_payload(tmp_path) -> None:  # noqa: ANN001
    ing = ingestor(tmp_path)
    result = ing.ingest("devices/d1/status", b'{"battery_pct": 140}', NOW_MS)
    assert result.status is None
    (dead,) = result.dead_letters
    assert dead.reason == RejectReason.OUT_OF_RANGE and dead.device == "d1"
    assert dead.mqtt_topic == "devices/d1/status"
    assert base64.b64decode(dead.payload_b64) == b'{"battery_pct": 140}'
    assert ing.rejected_by_reason == {"out_of_range": 1}


def test_metrics_text_counts_rejections_per_reason(tmp_path) -> None:  # noqa: ANN001
    ing = ingestor(tmp_path)
    ing.ingest("devices/ghost/vitals/json", b"{}", NOW_MS)
    ing.ingest("devices/d1/status", b"{not json", NOW_MS)
    ing.ingest("devices/d1/status", b"online", NOW_MS)
    config = GatewayConfig(mqtt_host="h", mqtt_port=1, client_id="c", shared_group="g",
                           kafka_bootstrap="k", normalized_topic="n", deadletter_topic="d")
    text = Gateway(config, ing).metrics_text()
    lines = set(text.splitlines())
    assert 'vitalstream_gateway_deadletter_total{reason="unknown_device"} 1' in lines
    assert 'vitalstream_gateway_deadletter_total{reason="malformed_payload"} 1' in lines
    assert "vitalstream_gateway_messages_total 3" in lines
    assert "vitalstream_gateway_statuses_total 1" in lines
    assert text.endswith("\n")
    for line in lines:  # every sample line is "name{labels} number"
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])
