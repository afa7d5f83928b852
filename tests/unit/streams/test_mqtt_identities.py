"""MQTT identities and their ACLs (streams/ops/dynsec.py, mqtt_admin.py), no broker."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from streams.notify.acks import mqtt_ack_origin
from streams.notify.settings import template_filter
from streams.ops.dynsec import password_hash, write_identities
from streams.ops.mqtt_admin import (
    MqttIdentityError,
    device_identity,
    gateway_identity,
    notifier_identity,
    staff_identity,
)
from streams.settings import Settings
from streams.staff.accounts import StaffMember


def acls(identity) -> set[tuple[str, str]]:  # noqa: ANN001
    return {(a.acltype, a.topic) for a in identity.acls if a.allow}


def test_password_hash_is_the_plugins_own_format() -> None:
    # Made by `mosquitto_ctrl dynsec init ds.json admin secretpw` (Mosquitto 2.0.11).
    salt = base64.b64decode("of/U1PQ/CGFx7bix")
    assert password_hash("secretpw", salt) == {
        "password": "Az/kVy8XRwXOOBalTRY+DgNy9w2OaJOJgUP8bF1KYWMFlJ/4S6SlVc4KOpagyV2f44cAcd5qVdKpCUwJ"
                    "Vu7g1w==",
        "salt": "of/U1PQ/CGFx7bix", "iterations": 101}


def test_a_device_may_publish_its_own_topics_and_subscribe_to_nothing() -> None:
    assert acls(device_identity("wr-0042")) == {("publishClientSend", "devices/wr-0042/#")}


@pytest.mark.parametrize("bad", ["wr/1", "wr+", "#", "", "gateway", "admin", "x" * 65])
def test_names_that_would_widen_a_topic_or_take_a_service_are_refused(bad: str) -> None:
    with pytest.raises(MqttIdentityError):
        device_identity(bad)


def test_staff_read_their_wards_and_ack_only_as_themselves() -> None:
    member = StaffMember(username="nurse1", display_name="N", wards=("W1", "W3"))
    assert acls(staff_identity(member)) == {
        ("subscribePattern", "care/W1/#"), ("publishClientReceive", "care/W1/#"),
        ("publishClientSend", "care/W1/acks/nurse1"),
        ("subscribePattern", "care/W3/#"), ("publishClientReceive", "care/W3/#"),
        ("publishClientSend", "care/W3/acks/nurse1")}


def test_services_get_exactly_their_topics() -> None:
    s = Settings()
    assert acls(gateway_identity(s)) == {
        ("subscribePattern", "$share/+/devices/+/vitals/#"),
        ("publishClientReceive", "devices/+/vitals/#"),
        ("subscribePattern", "$share/+/devices/+/status"),
        ("publishClientReceive", "devices/+/status")}
    assert acls(notifier_identity(s)) == {
        ("publishClientSend", "care/+/alerts"),
        ("publishClientSend", "care/+/patients/+/alerts"),
        ("publishClientSend", "care/+/acks/+/results"),
        ("subscribePattern", "care/+/acks/+"), ("publishClientReceive", "care/+/acks/+")}


def test_ack_topics_name_the_ward_and_the_user() -> None:
    template = "care/{ward}/acks/{username}"
    assert template_filter(template) == "care/+/acks/+"
    assert mqtt_ack_origin(template, "care/W1/acks/nurse1") == {"ward": "W1",
                                                                "username": "nurse1"}
    assert mqtt_ack_origin(template, "care/W1/acks/nurse1/results") is None
    assert mqtt_ack_origin(template, "care/W1/alerts/nurse1") is None


def test_writing_service_identities_keeps_devices_and_staff(tmp_path: Path) -> None:
    path = tmp_path / "dynamic-security.json"
    path.write_text(json.dumps({
        "clients": [{"username": "wr-1", "roles": [{"rolename": "device:wr-1"}]},
                    {"username": "gateway", "roles": [], "password": "old", "salt": "c2FsdA==",
                     "iterations": 101}],
        "roles": [{"rolename": "device:wr-1", "acls": []}], "groups": []}))
    write_identities(path, [(gateway_identity(Settings()), "pw")])
    config = json.loads(path.read_text())
    by_name = {c["username"]: c for c in config["clients"]}
    assert set(by_name) == {"wr-1", "gateway"}
    assert by_name["gateway"]["roles"] == [{"rolename": "service:gateway"}]
    assert by_name["gateway"]["password"] != "old"
    assert {r["rolename"] for r in config["roles"]} == {"device:wr-1", "service:gateway"}
    assert config["defaultACLAccess"]["publishClientReceive"] is False
    assert path.stat().st_mode & 0o077 == 0
    before = path.read_text()
    write_identities(path, [(gateway_identity(Settings()), "pw")])
    assert path.read_text() == before  # same password: the same hash is kept
