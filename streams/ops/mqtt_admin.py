"""Who may do what on the broker: the MQTT identities and their exact topics.

Every identity is a dynamic security client with one role of its own name
(streams/ops/dynsec.py). Mosquitto 2.0's dynamic security ACLs have no %u or
%c substitution (it arrives in 2.1), so a device's or a nurse's own topic is
spelled out in its own role.

| identity | may |
|---|---|
| admin | the dynsec control topic; read everything; the stack's health topic |
| gateway | shared subscriptions (`$share/<group>/`) on `devices/+/vitals/#` and `devices/+/status` |
| notifier | publish the care topics; read `care/{ward}/acks/{username}` |
| device `{id}` | publish `devices/{id}/...`; subscribe to nothing |
| staff `{username}` | read `care/{ward}/...` of its wards; ack on `care/{ward}/acks/{username}` |

docs/security.md explains the choices and how to rotate credentials.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streams.notify.settings import template_filter
from streams.ops.credentials import write_owner_only
from streams.ops.dynsec import (
    ALREADY,
    Acl,
    DynsecControl,
    DynsecError,
    Identity,
    create_commands,
    reads,
    writes,
)

if TYPE_CHECKING:
    from devices.simulator import MqttPublisher, SimulationConfig
    from streams.connections import MqttConnection
    from streams.settings import Settings
    from streams.staff.accounts import StaffMember

HEALTH_TOPIC_ROOT = "vitalstream/health"
# A topic level a device id or user name fills: no wildcards, no separators.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@:-]{1,64}$")
DEVICE_PREFIX = "device:"
STAFF_PREFIX = "staff:"
SERVICE_PREFIX = "service:"
SERVICE_NAMES = ("admin", "gateway", "notifier")


class MqttIdentityError(DynsecError):
    retriable = False


def _checked(kind: str, name: str, reserved: Sequence[str] = SERVICE_NAMES) -> str:
    if not NAME_PATTERN.match(name) or name in reserved:
        raise MqttIdentityError(f"{kind} {name!r} cannot be an MQTT identity: 1-64 letters, "
                                f"digits or _.@:- only, and not one of {', '.join(reserved)}")
    return name


def new_password() -> str:
    return secrets.token_urlsafe(24)


# ---- identities ----------------------------------------------------------------
def admin_identity() -> Identity:
    return Identity("admin", f"{SERVICE_PREFIX}admin", (
        writes("$CONTROL/dynamic-security/#"), *reads("$CONTROL/dynamic-security/#"),
        *reads("#"), writes(f"{HEALTH_TOPIC_ROOT}/#"),
    ), "operator: dynamic security, probes, observation")


def gateway_identity(settings: Settings) -> Identity:
    """Only shared subscriptions (any group: tests and benchmarks run their own)."""
    root = settings.gateway.topic_root
    acls: list[Acl] = []
    for topic in (f"{root}/+/vitals/#", f"{root}/+/status"):
        acls += reads(f"$share/+/{topic}")
    return Identity("gateway", f"{SERVICE_PREFIX}gateway", tuple(acls),
                    "MQTT -> Kafka gateways (shared subscription)")


def notifier_identity(settings: Settings) -> Identity:
    n = settings.notify
    templates = {n.mqtt_alert_topic, n.mqtt_patient_topic, n.mqtt_ack_result_topic}
    templates |= {t.topic for t in n.load_routing().targets if t.channel == "mqtt" and t.topic}
    acls = [writes(template_filter(t)) for t in sorted(templates)]
    acls += reads(template_filter(n.mqtt_ack_topic))
    return Identity("notifier", f"{SERVICE_PREFIX}notifier", tuple(acls), "pages to care staff, their acks")


def service_identities(settings: Settings) -> list[Identity]:
    return [admin_identity(), gateway_identity(settings), notifier_identity(settings)]


def device_identity(device: str, topic_root: str = "devices") -> Identity:
    """Publish on its own topics only; no subscription at all."""
    _checked("device id", device)
    return Identity(device, f"{DEVICE_PREFIX}{device}", (writes(f"{topic_root}/{device}/#"),),
                    "device")


def staff_identity(member: StaffMember, ack_topic: str = "care/{ward}/acks/{username}",
                   care_root: str = "care") -> Identity:
    """Read its wards' care topics; ack only as itself, only on its wards."""
    _checked("staff user name", member.username)
    acls: list[Acl] = []
    for ward in member.wards:
        _checked("ward", ward, reserved=())
        acls += reads(f"{care_root}/{ward}/#")
        acls.append(writes(ack_topic.format(ward=ward, username=member.username)))
    return Identity(member.username, f"{STAFF_PREFIX}{member.username}", tuple(acls),
                    f"staff ({member.role})")


def service_credentials(settings: Settings) -> list[tuple[Identity, str]]:
    """The service identities with their current passwords (for the broker's file)."""
    from streams.connections import mqtt_connection

    out = []
    for identity in service_identities(settings):
        password = mqtt_connection(settings.mqtt, identity.username).password  # type: ignore[arg-type]
        assert password is not None
        out.append((identity, password))
    return out


# ---- operations over the control topic -------------------------------------------
def ensure(ctl: DynsecControl, identities: Sequence[tuple[Identity, str | None]]) -> None:
    """Create each identity, or bring an existing one to exactly these ACLs and password.

    A name held by another kind of identity (a device named like a nurse)
    is refused, never taken over.
    """
    commands: list[dict[str, Any]] = []
    for identity, password in identities:
        commands += create_commands(identity, password)
    answers = ctl.run(commands, tolerate=ALREADY)
    existing = [identity for i, (identity, _) in enumerate(identities)
                if answers[2 * i].get("error") or answers[2 * i + 1].get("error")]
    repairs: list[dict[str, Any]] = []
    for identity in existing:
        held = {r["rolename"] for r in (ctl.get_client(identity.username) or {}).get("roles", [])}
        if held - {identity.rolename}:
            raise MqttIdentityError(f"MQTT user {identity.username!r} already exists with "
                                    f"other roles ({', '.join(sorted(held))}); not changed")
        role = ctl.run([{"command": "getRole", "rolename": identity.rolename}])[0]
        for acl in role.get("data", {}).get("role", {}).get("acls", []):
            repairs.append({"command": "removeRoleACL", "rolename": identity.rolename,
                            "acltype": acl["acltype"], "topic": acl["topic"]})
        repairs += [{"command": "addRoleACL", "rolename": identity.rolename, **a.to_json()}
                    for a in identity.acls]
        if identity.rolename not in held:
            repairs.append({"command": "addClientRole", "username": identity.username,
                            "rolename": identity.rolename})
    by_name = dict(identities)
    repairs += [{"command": "setClientPassword", "username": i.username,
                 "password": by_name[i]} for i in existing if by_name[i] is not None]
    if repairs:
        ctl.run(repairs)


def _delete(ctl: DynsecControl, names: Sequence[tuple[str, str]]) -> int:
    """Delete each (username, rolename) client that holds its role (a device id
    never deletes a nurse), in one batch; returns how many existed."""
    answers = ctl.run([{"command": "getClient", "username": u} for u, _ in names],
                      tolerate=ALREADY)
    commands: list[dict[str, Any]] = []
    existed = 0
    for (username, rolename), answer in zip(names, answers, strict=True):
        client = None if answer.get("error") else answer.get("data", {}).get("client", {})
        if client is not None:
            existed += 1
            if rolename not in {r["rolename"] for r in client.get("roles", [])}:
                raise MqttIdentityError(f"MQTT user {username!r} is not a "
                                        f"{rolename.split(':')[0]}; not deleted")
        commands += [{"command": "deleteClient", "username": username},
                     {"command": "deleteRole", "rolename": rolename}]
    ctl.run(commands, tolerate=ALREADY)
    return existed


def enroll_devices(connection: MqttConnection, devices: Iterable[tuple[str, str | None]],
                   topic_root: str = "devices") -> None:
    """Give each (device, password) its identity, over one control connection.
    A password None makes an identity without one: it can only be reached through
    a client certificate with that CN (the certificate listener)."""
    with DynsecControl(connection) as ctl:
        ensure(ctl, [(device_identity(d, topic_root), pw) for d, pw in devices])


def revoke_devices(connection: MqttConnection, devices: Iterable[str]) -> int:
    """Delete the identities: a connected device is cut off and its next
    connect refused. Returns how many existed."""
    with DynsecControl(connection) as ctl:
        return _delete(ctl, [(d, f"{DEVICE_PREFIX}{d}") for d in devices])


def fleet_credentials(settings: Settings, devices: Iterable[str]) -> dict[str, str]:
    """Identities for simulated devices (simulator, demo, benchmarks, tests).

    Each device is enrolled once as itself; its password is kept owner-only
    in `security.credentials_dir` (the simulated devices' own secret store) so a
    later run reuses it. Devices the broker no longer knows are enrolled again.
    """
    from streams.connections import mqtt_connection

    m = settings.mqtt
    path = _fleet_store(settings)
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    wanted = list(dict.fromkeys(devices))
    with DynsecControl(mqtt_connection(m, "admin")) as ctl:
        listing = ctl.run([{"command": "listClients", "count": -1}])[0]
        known = set(listing.get("data", {}).get("clients", []))
        missing = [d for d in wanted if d not in known or d not in stored]
        for device in missing:
            stored[device] = new_password()
        if missing:
            ensure(ctl, [(device_identity(d, settings.gateway.topic_root), stored[d])
                         for d in missing])
    if missing:
        write_owner_only(path, json.dumps(stored).encode())
    return {d: stored[d] for d in wanted}


def _fleet_store(settings: Settings) -> Path:
    """The simulated devices' own secret store: device id -> its MQTT password."""
    return settings.security.credentials_dir / "mqtt-simulated-devices.json"


def retire_fleet(settings: Settings, devices: Iterable[str]) -> int:
    """Undo `fleet_credentials` for these devices: delete their identities on
    the broker and their passwords from the store. Returns how many the
    broker still knew.

    A benchmark enrols a fresh fleet per run; left behind, every identity
    makes each later dynamic-security command slower (the broker rewrites its
    whole JSON file per command) and keeps a live password on disk.
    """
    from streams.connections import mqtt_connection

    gone = set(devices)
    existed = revoke_devices(mqtt_connection(settings.mqtt, "admin"), sorted(gone))
    path = _fleet_store(settings)
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        kept = {d: pw for d, pw in stored.items() if d not in gone}
        if len(kept) != len(stored):
            write_owner_only(path, json.dumps(kept).encode())
    return existed


def fleet_publisher(settings: Settings, config: SimulationConfig, **options: Any
                    ) -> MqttPublisher:
    """A simulator publisher whose every device connects as its own enrolled
    identity (`fleet_credentials`), over TLS as configured."""
    from devices.simulator import MqttPublisher, registry_entries
    from streams.connections import mqtt_connection

    conn = mqtt_connection(settings.mqtt, "admin")  # the broker and its TLS, not the identity
    devices = [str(e["device"]) for e in registry_entries(config)]
    return MqttPublisher(conn.host, conn.port, tls=conn.tls_context(),
                         credentials=fleet_credentials(settings, devices), **options)


def grant_staff(connection: MqttConnection, member: StaffMember, password: str,
                ack_topic: str = "care/{ward}/acks/{username}") -> None:
    """The MQTT side of a staff account (streams/staff): same name, its wards only."""
    with DynsecControl(connection) as ctl:
        ensure(ctl, [(staff_identity(member, ack_topic), password)])


def revoke_staff(connection: MqttConnection, username: str) -> bool:
    with DynsecControl(connection) as ctl:
        return _delete(ctl, [(username, f"{STAFF_PREFIX}{username}")]) == 1
