"""Mosquitto's dynamic security plugin: its file, and its control topic.

Two ways in, both used:
- `write_identities` edits the plugin's JSON file while the broker is
  stopped (`stack up` before it starts Mosquitto): the admin and service
  identities are put in with their current passwords, every other client
  and role (devices, staff) is kept. Password hashes are the plugin's own
  format (PBKDF2-HMAC-SHA512, base64 hash and salt), so the broker checks
  them as if `createClient` had made them.
- `DynsecControl` sends commands to `$CONTROL/dynamic-security/v1` over one
  MQTT connection, many per message, and matches each response by its
  correlation data. Changes apply at once, without a restart.

Mosquitto 2.0 rewrites the whole file after every command (not every
message), so a command costs time proportional to the number of clients;
batching saves the connections, not those writes. docs/security.md has the
measured cost of enrolling 1,000 devices.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streams.ops.errors import StackError

if TYPE_CHECKING:
    from streams.connections import MqttConnection

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
# The plugin's own default for clients it creates (mosquitto_ctrl dynsec init).
PBKDF2_ITERATIONS = 101
# What nobody may do unless a role says so; receiving is denied too, so a
# client that slips a wide subscription past a rule still gets nothing.
DEFAULT_ACL_ACCESS = {"publishClientSend": False, "publishClientReceive": False,
                      "subscribe": False, "unsubscribe": True}
# Errors that mean "already so"; `ensure` treats them as success.
ALREADY = ("already exists", "not found")


class DynsecError(StackError):
    """A dynamic security command was refused or not answered."""

    retriable = True


@dataclass(frozen=True)
class Acl:
    acltype: str  # publishClientSend | publishClientReceive | subscribeLiteral | subscribePattern
    topic: str
    allow: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"acltype": self.acltype, "topic": self.topic, "allow": self.allow}


@dataclass(frozen=True)
class Identity:
    """A dynsec client with one role of its own holding exactly its ACLs.

    The role's name says the kind (`device:wr-1`, `staff:nurse1`,
    `service:gateway`), so a name taken by another kind is noticed.
    """

    username: str
    rolename: str
    acls: tuple[Acl, ...]
    text_name: str = ""


def reads(filter_: str, literal: bool = False) -> tuple[Acl, Acl]:
    """Subscribe to `filter_` and receive what matches it.

    Mosquitto 2.0 checks a shared subscription's whole filter
    (`$share/<group>/...`) against subscribe ACLs, and the topic without the
    prefix against receive ACLs; `+` in a pattern ACL matches the group.
    """
    topic = filter_.split("/", 2)[2] if filter_.startswith("$share/") else filter_
    return (Acl("subscribeLiteral" if literal else "subscribePattern", filter_),
            Acl("publishClientReceive", topic))


def writes(topic: str) -> Acl:
    return Acl("publishClientSend", topic)


def password_hash(password: str, salt: bytes | None = None,
                  iterations: int = PBKDF2_ITERATIONS) -> dict[str, Any]:
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return {"password": base64.b64encode(digest).decode(),
            "salt": base64.b64encode(salt).decode(), "iterations": iterations}


def _password_matches(client: dict[str, Any], password: str) -> bool:
    try:
        salt = base64.b64decode(client["salt"])
        return bool(password_hash(password, salt, int(client["iterations"]))["password"]
                    == client["password"])
    except (KeyError, ValueError):
        return False


def write_identities(path: Path, identities: Sequence[tuple[Identity, str]]) -> None:
    """Put `identities` (with their passwords) into the plugin's file, keep the rest.

    Only while the broker is stopped: the plugin reads the file at start and
    overwrites it at every change.
    """
    config: dict[str, Any] = (json.loads(path.read_text()) if path.exists()
                              else {"clients": [], "roles": [], "groups": []})
    config["defaultACLAccess"] = dict(DEFAULT_ACL_ACCESS)
    names = {identity.username for identity, _ in identities}
    old = {c["username"]: c for c in config.get("clients", [])}
    clients = [c for c in config.get("clients", []) if c["username"] not in names]
    rolenames = {identity.rolename for identity, _ in identities}
    roles = [r for r in config.get("roles", []) if r["rolename"] not in rolenames]
    for identity, password in identities:
        previous = old.get(identity.username)
        # Keep the old hash when the password did not change: same file, same bytes.
        hashed = ({k: previous[k] for k in ("password", "salt", "iterations")}
                  if previous and _password_matches(previous, password)
                  else password_hash(password))
        clients.append({"username": identity.username, "textName": identity.text_name,
                        "roles": [{"rolename": identity.rolename}], **hashed})
        roles.append({"rolename": identity.rolename,
                      "acls": [a.to_json() for a in identity.acls]})
    config["clients"], config["roles"] = clients, roles
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh, indent=1)
    os.replace(tmp, path)


def create_commands(identity: Identity, password: str | None) -> list[dict[str, Any]]:
    """The role with its ACLs, then the client holding it (two file writes)."""
    client: dict[str, Any] = {"command": "createClient", "username": identity.username,
                              "textname": identity.text_name,
                              "roles": [{"rolename": identity.rolename}]}
    if password is not None:
        client["password"] = password
    return [{"command": "createRole", "rolename": identity.rolename,
             "acls": [a.to_json() for a in identity.acls]}, client]


class DynsecControl:
    """One admin connection to the control topic; `run` sends a batch and waits.

    with DynsecControl(mqtt_connection(settings.mqtt, "admin")) as ctl:
        ctl.run(create_commands(identity, password))
    """

    def __init__(self, connection: MqttConnection, timeout_s: float = 300.0,
                 batch: int = 500) -> None:
        self.connection = connection
        self.timeout_s = timeout_s
        self.batch = batch
        self._cond = threading.Condition()
        self._responses: dict[str, dict[str, Any]] = {}
        self._client: Any = None

    def __enter__(self) -> DynsecControl:
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=f"vs-dynsec-{uuid.uuid4().hex[:8]}",
                             protocol=mqtt.MQTTv5)
        self.connection.apply(client)
        ready = threading.Event()
        refused: list[str] = []

        def on_connect(c, u, flags, reason_code, props) -> None:  # noqa: ANN001
            if reason_code.is_failure:
                refused.append(str(reason_code))
                ready.set()
                return
            c.subscribe(RESPONSE_TOPIC, qos=1)

        def on_subscribe(c, u, mid, reason_codes, props) -> None:  # noqa: ANN001
            if any(rc.is_failure for rc in reason_codes):
                refused.append(f"subscribe {reason_codes[0]}")
            ready.set()

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = self._on_message
        try:
            client.connect(self.connection.host, self.connection.port, keepalive=30)
        except OSError as exc:
            raise DynsecError(f"cannot connect to Mosquitto at {self.connection.host}:"
                              f"{self.connection.port}: {exc}") from exc
        client.loop_start()
        self._client = client
        if not ready.wait(self.timeout_s) or refused:
            self.__exit__()
            raise DynsecError(f"dynamic security control refused or timed out: {refused}")
        return self

    def __exit__(self, *exc: object) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def _on_message(self, client, userdata, msg) -> None:  # noqa: ANN001
        try:
            responses = json.loads(msg.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            return
        with self._cond:
            for response in responses:
                self._responses[str(response.get("correlationData"))] = response
            self._cond.notify_all()

    def run(self, commands: Iterable[dict[str, Any]],
            tolerate: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Send every command (batched), wait for every answer, in order.

        An error whose text contains one of `tolerate` is returned, not raised.
        """
        assert self._client is not None, "use DynsecControl as a context manager"
        tagged = [{**c, "correlationData": uuid.uuid4().hex} for c in commands]
        for start in range(0, len(tagged), self.batch):
            payload = json.dumps({"commands": tagged[start:start + self.batch]})
            self._client.publish(CONTROL_TOPIC, payload, qos=1)
        keys = [c["correlationData"] for c in tagged]
        with self._cond:
            if not self._cond.wait_for(lambda: all(k in self._responses for k in keys),
                                       timeout=self.timeout_s):
                missing = sum(k not in self._responses for k in keys)
                raise DynsecError(f"{missing} of {len(keys)} dynamic security commands "
                                  f"not answered within {self.timeout_s:.0f}s")
            answers = [self._responses.pop(k) for k in keys]
        for command, answer in zip(tagged, answers, strict=True):
            error = answer.get("error")
            if error and not any(t in str(error) for t in tolerate):
                raise DynsecError(f"dynsec {command['command']} refused: {error}")
        return answers

    def get_client(self, username: str) -> dict[str, Any] | None:
        answer = self.run([{"command": "getClient", "username": username}],
                          tolerate=ALREADY)[0]
        return None if answer.get("error") else dict(answer.get("data", {}).get("client", {}))
