"""The compose deployment's secrets: everything docker/compose.yaml and the
configuration it mounts reference under the secrets volume (and the
broker's identities) is made by its init step, `vitalstream compose init`
(streams/ops/compose_init.py), run here into a temporary folder."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
import yaml

from streams.ops.compose import COMPOSE_FILE, SECRETS_MOUNT, rendered_files
from streams.ops.compose_init import provision
from streams.ops.credentials import DEV_IDENTITIES
from streams.ops.templates import DOCKER_DIR
from streams.settings import Settings

MOSQUITTO_DATA = "/mosquitto/data"
_PATH = re.compile(rf"(?:{re.escape(SECRETS_MOUNT)}|{re.escape(MOSQUITTO_DATA)})/[\w./-]+")


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def mounted_texts() -> dict[str, str]:
    """docker/compose.yaml and every file it mounts from docker/ (rendered or not)."""
    texts = {"compose.yaml": COMPOSE_FILE.read_text()}
    for service in compose()["services"].values():
        for volume in service.get("volumes", []):
            source = COMPOSE_FILE.parent / volume.split(":", 1)[0]
            files = [source] if source.is_file() else (
                [p for p in source.rglob("*") if p.is_file()] if source.is_dir() else [])
            for f in files:
                texts[str(f.relative_to(DOCKER_DIR))] = f.read_text()
    return texts


# docker/influxdb2/init-vitalstream.sh reads its users' passwords with `secret NAME`.
_SECRET_CALL = re.compile(r"\$\(secret (\w+)\)")


def referenced() -> set[str]:
    texts = mounted_texts().values()
    return {m.rstrip(".") for text in texts for m in _PATH.findall(text) if not m.endswith("/")} | {
        f"{SECRETS_MOUNT}/influxdb/{name}.password" for text in texts
        for name in _SECRET_CALL.findall(text)}


@pytest.fixture()
def provisioned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Settings]:
    env = compose()["x-vitalstream"]["environment"]
    for key, value in env.items():
        if key.startswith("VITALSTREAM_"):
            monkeypatch.setenv(key, str(value).replace(SECRETS_MOUNT, str(tmp_path / "secrets")))
    settings = Settings()
    provision(settings, tmp_path / "secrets", tmp_path / "mosquitto-data")
    return tmp_path, settings


def local(path: str, root: Path) -> Path:
    return Path(path.replace(SECRETS_MOUNT, str(root / "secrets"))
                .replace(MOSQUITTO_DATA, str(root / "mosquitto-data")))


def test_every_secret_the_deployment_references_is_made_by_init(provisioned) -> None:  # noqa: ANN001
    root, _ = provisioned
    paths = referenced()
    # The broker's certificate and key, the clients' CA, every identity's folder.
    assert len(paths) >= 10, paths
    missing = sorted(p for p in paths if not local(p, root).exists())
    assert missing == []
    # Every identity a process authenticates as has its password.
    credentials = local(f"{SECRETS_MOUNT}/vitalstream/credentials", root)
    assert {p.stem for p in credentials.glob("*.password")} >= set(DEV_IDENTITIES)


def test_the_mosquitto_configuration_is_tls_only_with_the_init_certificates() -> None:
    conf = rendered_files()["compose/rendered/mosquitto/mosquitto.conf"]
    listeners = [line for line in conf.splitlines() if line.startswith("listener ")]
    assert listeners == ["listener 8883 0.0.0.0"]
    assert f"certfile {SECRETS_MOUNT}/mosquitto/server.pem" in conf


def test_services_that_reference_secrets_mount_the_volume() -> None:
    texts = mounted_texts()
    named = set(compose()["volumes"])
    for name, service in compose()["services"].items():
        mounts = service.get("volumes", [])
        files = [str((COMPOSE_FILE.parent / v.split(":", 1)[0]).resolve().relative_to(DOCKER_DIR))
                 for v in mounts if v.split(":", 1)[0] not in named]
        mine = json.dumps(service) + "".join(texts.get(f, "") for f in files)
        if SECRETS_MOUNT in mine:
            assert f"secrets:{SECRETS_MOUNT}:ro" in mounts or name == "init", name


def test_secrets_are_owner_only_and_a_second_run_keeps_them(provisioned) -> None:  # noqa: ANN001
    root, settings = provisioned
    secrets = [p for p in (root / "secrets").rglob("*") if p.is_file()]
    assert secrets and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in secrets)
    before = {p: p.read_bytes() for p in secrets}
    again = provision(settings, root / "secrets", root / "mosquitto-data")
    assert again.written == []
    assert {p: p.read_bytes() for p in secrets} == before


def test_the_broker_knows_the_service_identities(provisioned) -> None:  # noqa: ANN001
    root, _ = provisioned
    dynsec = json.loads((root / "mosquitto-data" / "dynamic-security.json").read_text())
    assert {c["username"] for c in dynsec["clients"]} >= {"admin", "gateway", "notifier"}
    assert dynsec["defaultACLAccess"]["publishClientSend"] is False


def test_influxdb2_has_a_v1_user_for_every_principal_of_the_processes() -> None:
    # The processes authenticate as INFLUX_USER_OF[principal] (streams/connections.py
    # influx_auth); on 2.x those are v1 authorizations the init script creates.
    from streams.ops.credentials import INFLUX_ADMIN, INFLUX_USER_OF

    script = (DOCKER_DIR / "influxdb2" / "init-vitalstream.sh").read_text()
    users = set(re.findall(r"--username (\w+)", script))
    assert users == set(INFLUX_USER_OF.values()) - {INFLUX_ADMIN}
    env = compose()["services"]["influxdb"]["environment"]
    assert env["DOCKER_INFLUXDB_INIT_USERNAME"] == INFLUX_ADMIN
    assert compose()["x-vitalstream"]["environment"]["VITALSTREAM_INFLUX__API"] == "v1"


def test_every_vitalstream_command_of_the_deployment_is_one_the_cli_accepts() -> None:
    # No engine here: at least the processes' commands must parse (a stale
    # `python -c` once called a function whose signature had changed).
    from streams.cli import build_parser

    for name, service in compose()["services"].items():
        command = service.get("command")
        if isinstance(command, list) and command[:1] == ["vitalstream"]:
            args = build_parser(command[1:]).parse_args(command[1:])
            assert callable(args.func), name
