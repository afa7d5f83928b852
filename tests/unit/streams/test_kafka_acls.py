"""The Kafka grant table (streams/kafka_acls.py) and the client options that use it."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import faust
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streams import topics as t
from streams.connections import ConnectionSettingsError, faust_broker_kwargs, kafka_client_kwargs
from streams.faust_patches import fingerprint
from streams.kafka_acls import AIOKAFKA_VERSION, RELIED_ON, AclScope, Op, Pattern, Resource, grants
from streams.security_settings import PrincipalCredentials, SecuritySettings
from streams.settings import KafkaSettings

SCOPE = AclScope(topic_prefix="p.", worker_app_id="app", notify_group="ng", console_group="cg")


def ops(service: str, name: str) -> set[Op]:
    return {op for g in grants(SCOPE) if g.service == service and g.name == name for op in g.ops}


def test_only_the_operator_writes_the_enrollment_registry() -> None:
    writers = {g.service for g in grants(SCOPE)
               if g.name == "p." + t.DEVICES_REGISTRY and Op.WRITE in g.ops}
    assert writers == set()


def test_gateway_writes_its_three_topics_and_joins_no_group() -> None:
    mine = [g for g in grants(SCOPE) if g.service == "gateway"]
    assert {g.name for g in mine if Op.WRITE in g.ops} == {
        "p." + t.VITALS_NORMALIZED, "p." + t.VITALS_DEADLETTER, "p." + t.DEVICES_STATUS}
    assert not [g for g in mine if g.resource is Resource.GROUP]


def test_every_topic_grant_is_under_the_prefix_and_literal_but_fausts_own() -> None:
    for g in grants(SCOPE):
        if g.resource is Resource.TOPIC and g.pattern is Pattern.LITERAL:
            assert g.name.startswith("p.")
    prefixed = [g for g in grants(SCOPE) if g.pattern is Pattern.PREFIXED]
    assert [(g.service, g.name) for g in prefixed] == [("worker", "app-")]


def test_groups_are_each_services_own() -> None:
    groups = {(g.service, g.name) for g in grants(SCOPE) if g.resource is Resource.GROUP}
    assert groups == {("worker", "app"), ("worker", "app-influx"), ("notifier", "ng"),
                      ("console", "cg")}
    assert ops("notifier", "p." + t.VITALS_NORMALIZED) == set()


def _kafka(tmp_path: Path) -> KafkaSettings:
    k = KafkaSettings(bootstrap="127.0.0.1:1")
    k._security = SecuritySettings(
        ca_file=tmp_path / "missing.pem", credentials_dir=tmp_path,
        principals={"worker": PrincipalCredentials(username="svc-worker", password="pw")})
    return k


def test_client_options_need_the_ca(tmp_path: Path) -> None:
    with pytest.raises(ConnectionSettingsError, match="CA certificate"):
        kafka_client_kwargs(_kafka(tmp_path), "worker")


def test_client_options_are_scram_over_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    monkeypatch.setattr("streams.connections.kafka_ssl_context",
                        lambda k: ssl.create_default_context())
    kw = kafka_client_kwargs(_kafka(tmp_path), "worker")
    assert (kw["security_protocol"], kw["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (kw["sasl_plain_username"], kw["sasl_plain_password"]) == ("svc-worker", "pw")
    assert kw["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    creds = faust_broker_kwargs(_kafka(tmp_path), "worker")["broker_credentials"]
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.protocol.value, creds.mechanism.value) == ("SASL_SSL", "SCRAM-SHA-512")


@pytest.mark.parametrize("method", sorted(RELIED_ON))
def test_the_private_aiokafka_code_the_acls_use_is_unchanged(method: tuple[str, str, str]) -> None:
    assert fingerprint(*method) == RELIED_ON[method], (
        f"aiokafka changed {'.'.join(method)}: check streams/kafka_acls.py ensure_acls "
        "(or switch to a public ACL API) before updating its hash")


def test_aiokafka_is_pinned_and_still_has_no_public_acl_api() -> None:
    text = (Path(__file__).resolve().parents[3] / "pyproject.toml").read_text()
    assert f'"aiokafka=={AIOKAFKA_VERSION}"' in text
    assert metadata.version("aiokafka") == AIOKAFKA_VERSION
    public = {name for name in dir(AIOKafkaAdminClient) if "acl" in name.lower()}
    assert public == set(), f"aiokafka now offers {public}: use it instead of _send_request"
