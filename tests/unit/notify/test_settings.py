"""Routing configuration: the example file loads, mistakes are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.notify.errors import RoutingConfigError
from streams.notify.routing import Router
from streams.notify.settings import NotifySettings, RoutingConfig, load_routing_file

EXAMPLE = Path(__file__).resolve().parents[3] / "docker" / "notify" / "routes.example.json"


def test_example_routes_file_loads_and_routes_by_ward_severity_and_tier() -> None:
    router = Router(load_routing_file(EXAMPLE))
    def names(ward: str, sev: str, tier: int) -> list[str]:
        return sorted(t.name for t in router.targets(ward, sev, tier, "raised"))

    assert names("W1", "low", 0) == ["ward-mqtt"]
    assert names("W1", "high", 0) == ["ward-mqtt", "ward-pager"]
    assert names("ICU", "high", 0) == ["charge-nurse-mail", "ward-mqtt", "ward-pager"]
    assert names("W1", "low", 2) == ["rrt-mail", "rrt-pager", "ward-mqtt"]
    assert router.targets("W1", "low", 0, "raised")[0].address == "care/W1/alerts"


def test_defaults_page_the_ward_topic() -> None:
    s = NotifySettings()
    assert s.http_port == 8090 and s.data_dir == Path(".stack/notify")
    router = Router(s.load_routing())
    assert [t.address for t in router.targets("W3", "medium", 0, "raised")] == ["care/W3/alerts"]


@pytest.mark.parametrize("bad, message", [
    ({"routes": [{"targets": ["nope"]}]}, "unknown targets"),
    ({"rota": [{"tier": 0, "name": "a", "timeout_s": 1}, {"tier": 2, "name": "b", "timeout_s": 1}]},
     "without gaps"),
    ({"targets": [{"name": "m", "channel": "email"}], "routes": []}, "recipients"),
])
def test_inconsistent_routes_file_is_refused(tmp_path: Path, bad: dict, message: str) -> None:
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(RoutingConfigError, match=message):
        load_routing_file(path)


def test_toml_routes_file(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text('[[targets]]\nname = "m"\nchannel = "mqtt"\n\n'
                    '[[routes]]\ntargets = ["m"]\n')
    assert load_routing_file(path) == RoutingConfig.model_validate(
        {"targets": [{"name": "m", "channel": "mqtt"}], "routes": [{"targets": ["m"]}]})
