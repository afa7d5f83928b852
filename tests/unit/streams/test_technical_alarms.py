"""Technical alarms (IEC 60601-1-8 technical alarm conditions) through the
processor, with an injected clock: no sleeps, time is an argument."""

from __future__ import annotations

from analytics.alerts import DEFAULT_RULES, AlertMachine
from analytics.technical import DeviceWatch, TechnicalSettings
from streams.notify.routing import Router
from streams.notify.settings import RouteSettings, RoutingConfig, TargetSettings
from streams.pipeline.processor import PatientProcessor, ProcessorConfig
from streams.pipeline.state import checkpoint_records, load_state

T0 = 1_700_000_040_000 - 1_700_000_040_000 % 60_000
SETTINGS = TechnicalSettings(offline_after_ms=120_000, no_data_after_ms=300_000,
                             off_body_delay_ms=60_000, poor_signal_delay_ms=300_000)


def make_processor() -> PatientProcessor:
    return PatientProcessor(ProcessorConfig(allowed_lateness_ms=5_000, technical=SETTINGS),
                            AlertMachine([dict(r) for r in DEFAULT_RULES]))


def second(i: int, *, metrics=("spo2", "heart_rate"), quality=None) -> dict:
    ts = T0 + i * 1000
    return {"v": 1, "pid": "p1", "device": "d1", "ward": "W1", "source": "json",
            "msg_id": f"m{i}", "received_ms": ts, "readings": [
                {"metric": m, "unit": "/min", "value": 96.0, "ts_ms": ts,
                 **({"quality": quality} if quality else {})} for m in metrics]}


def status(device="d1", **fields) -> dict:
    return {"v": 1, "device": device, "pid": "p1", "ward": "W1", "online": True,
            "ts_ms": T0, "msg_id": "s", "received_ms": T0, **fields}


def alerts(out, rule=None):
    return [(a.rule, a.kind) for a in out.alerts if rule is None or a.rule == rule]


def feed(proc, state, seconds, **kw):
    events = []
    for i in seconds:
        out = proc.process_batch(state, second(i, **kw), T0 + i * 1000)
        events += out.alerts
    return events


def tick(proc, state, now_ms):
    return proc.tick(state, now_ms) if proc.needs_tick(state, now_ms) else None


def test_silence_raises_device_offline_escalates_and_resolves_when_data_returns():
    proc = make_processor()
    state = proc.new_state("p1")
    assert feed(proc, state, range(0, 60)) == []  # data flowing: no technical alarm
    last = T0 + 59_000
    early = tick(proc, state, last + 119_000)  # idle windows close; no alarm yet
    assert early is None or early.alerts == []
    out = proc.tick(state, last + 120_000)
    raised = [a for a in out.alerts if a.rule == "device_offline"]
    assert [(a.kind, a.category, a.severity) for a in raised] == [
        ("raised", "technical", "medium")]
    assert [a.rule for a in out.alerts if a.kind == "raised"] == ["device_offline"]
    # Unacknowledged for 15 minutes: the next tier (the same lifecycle as physiological alerts).
    out = tick(proc, state, last + 120_000 + 15 * 60_000)
    assert out is not None and alerts(out, "device_offline") == [("device_offline", "escalated")]
    # Data returns: resolved at once.
    out = proc.process_batch(state, second(2000), T0 + 2_000_000)
    assert alerts(out, "device_offline") == [("device_offline", "resolved")]


def test_last_will_raises_offline_at_once_and_ack_stops_escalation():
    proc = make_processor()
    state = proc.new_state("p1")
    feed(proc, state, range(0, 10))
    out = proc.on_status(state, status(online=False), T0 + 11_000)
    assert alerts(out) == [("device_offline", "raised")]
    alert_id = out.alerts[0].alert_id
    out = proc.ack(state, alert_id, "nurse-1", T0 + 20_000)
    assert alerts(out) == [("device_offline", "acknowledged")]
    later = tick(proc, state, T0 + 11_000 + 20 * 60_000)
    assert later is None or alerts(later, "device_offline") == []


def test_battery_low_from_status_and_resolved_after_a_charge():
    proc = make_processor()
    state = proc.new_state("p1")
    feed(proc, state, range(0, 5))
    assert alerts(proc.on_status(state, status(battery_pct=40.0), T0 + 6_000)) == []
    out = proc.on_status(state, status(battery_pct=12.0), T0 + 7_000)
    assert [(a.rule, a.kind, a.severity) for a in out.alerts] == [("battery_low", "raised", "low")]
    assert alerts(proc.on_status(state, status(battery_pct=17.0), T0 + 8_000)) == []  # hysteresis
    assert alerts(proc.on_status(state, status(battery_pct=90.0), T0 + 9_000)) == [
        ("battery_low", "resolved")]


def test_off_body_waits_for_its_delay_then_raises_and_clears_on_contact():
    proc = make_processor()
    state = proc.new_state("p1")
    feed(proc, state, range(0, 30))
    # Contact lost on every reading: held 60 s (alarm condition delay) before raising.
    events = feed(proc, state, range(30, 89), quality=["contact_lost"])
    assert [e.rule for e in events if e.kind == "raised"] == []
    events = feed(proc, state, range(89, 95), quality=["contact_lost"])
    assert [(e.rule, e.kind) for e in events if e.kind == "raised"] == [
        ("sensor_off_body", "raised")]
    events = feed(proc, state, range(95, 97))
    assert ("sensor_off_body", "resolved") in [(e.rule, e.kind) for e in events]


def test_status_off_body_is_an_off_body_alarm_too():
    proc = make_processor()
    state = proc.new_state("p1")
    feed(proc, state, range(0, 5))
    proc.on_status(state, status(on_body=False), T0 + 5_000)
    out = tick(proc, state, T0 + 5_000 + 60_000)
    assert out is not None and alerts(out, "sensor_off_body") == [("sensor_off_body", "raised")]


def test_one_metric_silent_while_others_arrive_is_no_data_for_that_metric():
    proc = make_processor()
    state = proc.new_state("p1")
    feed(proc, state, range(0, 60))
    events = feed(proc, state, range(60, 400), metrics=("heart_rate",))
    raised = [e for e in events if e.kind == "raised"]
    assert [(e.rule, e.metric) for e in raised] == [("no_data.spo2", "spo2")]
    assert raised[0].ts_ms == T0 + 59_000 + 300_000  # exactly no_data_after after the last spo2


def test_a_metric_measured_every_15_min_is_not_silent_between_measurements():
    watch = DeviceWatch()
    for k in range(4):
        watch.on_readings("d1", ["systolic_bp", "heart_rate"], [(), ()], T0 + k * 900_000)
        for s in range(1, 900):
            watch.on_readings("d1", ["heart_rate"], [()], T0 + k * 900_000 + s * 1000)
    sig = watch.signals(T0 + 3 * 900_000 + 899_000, SETTINGS)
    assert sig["technical.no_data.systolic_bp"] == 0.0
    # Three of its usual gaps missing while heart rate still arrives: now it is silent.
    watch.on_readings("d1", ["heart_rate"], [()], T0 + 3 * 900_000 + 2_700_000)
    assert watch.signals(T0 + 3 * 900_000 + 2_700_000, SETTINGS)[
        "technical.no_data.systolic_bp"] == 1.0


def test_a_cuff_used_on_the_4_hourly_round_raises_no_no_data_between_rounds():
    """The first round's blood pressure arms nothing (cadence unknown); from the
    second round on it is expected every 4 h, and missed only after 3 rounds."""
    watch = DeviceWatch()
    round_ms = 4 * 3600_000
    for k in range(2):
        watch.on_readings("cuff", ["systolic_bp"], [()], T0 + k * round_ms)
        for minute in range(1, 240):
            t = T0 + k * round_ms + minute * 60_000
            watch.on_readings("wearable", ["heart_rate"], [()], t)
            assert watch.signals(t, SETTINGS).get("technical.no_data.systolic_bp", 0.0) == 0.0
    # Three rounds missed: the cuff, a device of its own, is offline by its cadence.
    later = T0 + round_ms + 3 * round_ms
    watch.on_readings("wearable", ["heart_rate"], [()], later)
    assert watch.signals(later - 60_000, SETTINGS)["technical.device_offline"] == 0.0
    assert watch.signals(later, SETTINGS)["technical.device_offline"] == 1.0


def test_mostly_flagged_windows_for_five_minutes_raise_signal_poor():
    proc = make_processor()
    state = proc.new_state("p1")
    feed(proc, state, range(0, 60))
    events = feed(proc, state, range(60, 60 + 8 * 60), quality=["artifact"])
    raised = [(e.rule, e.kind) for e in events if e.kind == "raised"]
    assert ("signal_poor", "raised") in raised
    assert ("sensor_off_body", "raised") not in raised


def test_technical_state_survives_a_restart():
    proc = make_processor()
    state = proc.new_state("p1")
    feed(proc, state, range(0, 10))
    proc.on_status(state, status(online=False), T0 + 11_000)
    table = dict(checkpoint_records(state))
    restored = load_state("p1", table.get)
    assert restored is not None and restored.watch.devices["d1"].online is False
    out = proc.process_batch(restored, second(100), T0 + 100_000)
    assert alerts(out, "device_offline") == [("device_offline", "resolved")]


def test_routes_can_send_technical_alarms_elsewhere():
    config = RoutingConfig(
        targets=[TargetSettings(name="ward", channel="mqtt"),
                 TargetSettings(name="biomed", channel="mqtt", topic="biomed/{ward}")],
        routes=[RouteSettings(targets=["ward"]),
                RouteSettings(categories=["technical"], targets=["biomed"])])
    router = Router(config)
    assert [t.name for t in router.targets("W1", "medium", 0, "raised", "technical")] == [
        "ward", "biomed"]
    assert [t.name for t in router.targets("W1", "medium", 0, "raised", "physiological")] == [
        "ward"]


def test_a_second_device_saying_on_body_does_not_hide_the_wearable_taken_off():
    proc = make_processor()
    state = proc.new_state("p1")
    feed(proc, state, range(0, 5))
    proc.on_status(state, status(on_body=False), T0 + 5_000)
    proc.on_status(state, status(device="bedside-1", on_body=True), T0 + 6_000)
    out = tick(proc, state, T0 + 5_000 + 60_000)
    assert out is not None and alerts(out, "sensor_off_body") == [("sensor_off_body", "raised")]


def test_a_device_heard_once_is_not_offline_by_silence_but_a_regular_one_is():
    watch = DeviceWatch()
    watch.on_readings("nurse-tablet", ["body_temperature"], [()], T0)  # a spot check
    assert watch.signals(T0 + 3600_000, SETTINGS)["technical.device_offline"] == 0.0
    # Nor is its metric "no data": seen once, it has no cadence to miss.
    assert "technical.no_data.body_temperature" not in watch.signals(T0 + 3600_000, SETTINGS)
    assert watch.next_deadline_ms(SETTINGS) is None
    for s in range(0, 10):
        watch.on_readings("wearable", ["heart_rate"], [()], T0 + s * 1000)
    assert watch.signals(T0 + 9_000 + 119_000, SETTINGS)["technical.device_offline"] == 0.0
    assert watch.signals(T0 + 9_000 + 120_000, SETTINGS)["technical.device_offline"] == 1.0
