"""The ward console in a real headless Chromium (Selenium, Debian's chromium-driver),
against a real worker, Kafka and InfluxDB: log in, the ward's tiles, a
deterioration shown live, ack from the tile (escalation stops, audit names
the nurse), ward scoping, the patient view's charts, a manual observation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from streams.connections import kafka_client_kwargs
from streams.staff.accounts import StaffDirectory, StaffMember
from tests.integration.conftest import influx_query, wait_until
from tests.integration.streams_helpers import create_topics, worker_env

pytestmark = pytest.mark.integration

ESCALATE_AFTER_MS = 30_000
CONSOLE_PORT = 30741
DOCS = Path(__file__).resolve().parents[2] / "docs"
# The README's console screenshots are refreshed from this test only on request
# (VITALSTREAM_TEST_SCREENSHOTS=docs): a plain `make test` leaves the checkout clean.
REFRESH_DOCS_SCREENSHOTS = os.environ.get("VITALSTREAM_TEST_SCREENSHOTS") == "docs"


def rules_file(path: Path) -> Path:
    path.write_text(json.dumps({"rules": [
        {"name": "spo2_low", "signal": "spo2.median", "trigger": 90, "clear": 92,
         "direction": "below", "min_duration_ms": 0, "severity": "high",
         "escalate_after_ms": ESCALATE_AFTER_MS, "realert_interval_ms": 600_000}]}))
    return path


def batch(pid: str, device: str, ward: str, ts_ms: int, spo2: float) -> bytes:
    readings = [("heart_rate", "/min", 72.0 + ts_ms // 1000 % 5), ("spo2", "%", spo2),
                ("respiratory_rate", "/min", 16.0), ("body_temperature", "Cel", 36.9),
                ("systolic_bp", "mm[Hg]", 124.0), ("diastolic_bp", "mm[Hg]", 78.0)]
    return json.dumps({"v": 1, "pid": pid, "device": device, "ward": ward, "source": "json",
                       "msg_id": f"{device}-{ts_ms}", "received_ms": ts_ms, "readings": [
                           {"metric": m, "unit": u, "value": v, "ts_ms": ts_ms}
                           for m, u, v in readings]}).encode()


async def produce_minutes(settings, topic: str, patients: list[tuple[str, str, str]],
                          from_ms: int, to_ms: int, spo2: float) -> None:
    producer = AIOKafkaProducer(**kafka_client_kwargs(settings.kafka, "admin"), linger_ms=5)
    await producer.start()
    try:
        for ts in range(from_ms, to_ms, 1000):
            for pid, device, ward in patients:
                await producer.send(topic, batch(pid, device, ward, ts, spo2), key=pid.encode())
        await producer.flush()
    finally:
        await producer.stop()


def topic_records(settings, topic: str, since_ms: int) -> list[tuple[int, dict]]:
    """(Kafka timestamp ms, JSON value) of every record since `since_ms`."""
    async def go() -> list[tuple[int, dict]]:
        consumer = AIOKafkaConsumer(**kafka_client_kwargs(settings.kafka, "admin"), group_id=None,
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            parts = [TopicPartition(topic, p) for p in range(settings.kafka.partitions)]
            consumer.assign(parts)
            found = await consumer.offsets_for_times({tp: since_ms for tp in parts})
            ends = await consumer.end_offsets(parts)
            for tp in parts:
                consumer.seek(tp, found[tp].offset if found.get(tp) else ends[tp])
            out: list[tuple[int, dict]] = []
            for _ in range(4):
                for records in (await consumer.getmany(timeout_ms=250)).values():
                    out += [(r.timestamp, json.loads(r.value)) for r in records]
            return out
        finally:
            await consumer.stop()

    return asyncio.run(go())


def spki_hash(cert_file: Path) -> str:
    """Chromium trusts exactly the dev server certificate's key, nothing else."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture()
def browser(settings, tmp_path):
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver_path, "Debian's chromium and chromium-driver (make setup)"
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                f"--user-data-dir={tmp_path / 'chromium'}",
                f"--ignore-certificate-errors-spki-list={spki_hash(settings.security.server_cert_file)}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    yield driver
    driver.quit()


def login(driver, base: str, username: str, password: str) -> None:
    driver.get(base + "login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()
    WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.ID, "tiles"))


def tile(driver, pid: str):
    found = driver.find_elements(By.CSS_SELECTOR, f'article.tile[data-pid="{pid}"]')
    return found[0] if found else None


def text_of(driver, selector: str) -> str:
    """The element's text, read in the same lookup that finds it ('' when absent).

    The live console re-renders tiles as data arrives: an element found by one
    WebDriver call can be gone by the next, so finding and reading are one script."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", selector)


def press_across_rebuild(driver, pid: str, selector: str) -> None:
    """Mouse down on the element, wait until the console redraws the patient's
    tile with new text (its ages move on at least every 5 s), then mouse up
    where the pointer is: a slow press, as a person's can be."""
    for attempt in range(5):
        try:
            ActionChains(driver).click_and_hold(
                driver.find_element(By.CSS_SELECTOR, selector)).perform()
            break
        except StaleElementReferenceException:
            if attempt == 4:
                raise
    before = tile_text(driver, pid)
    WebDriverWait(driver, 15, poll_frequency=0.05).until(lambda d: tile_text(d, pid) != before)
    ActionChains(driver).release().perform()


def tile_text(driver, pid: str) -> str:
    return text_of(driver, f'article.tile[data-pid="{pid}"]')


def test_ward_console_live_ack_scoping_and_patient_view(settings, processes, run_id, tmp_path,
                                                        pseudonymizer, browser):
    prefix = f"t{run_id}."
    asyncio.run(create_topics(settings, run_id))
    registry = tmp_path / "registry.json"
    patients = [("pat-a-" + run_id, "dev-a-" + run_id, "WARD-A", "3", "Ada Lovelace"),
                ("pat-b-" + run_id, "dev-b-" + run_id, "WARD-B", "7", "Bob Boole")]
    registry.write_text(json.dumps({"devices": [
        {"device": d, "patient_id": p, "ward": w, "bed": b, "display_name": n}
        for p, d, w, b, n in patients]}))
    pid_a, pid_b = (pseudonymizer.pseudonym(p[0]) for p in patients)
    staff = StaffDirectory(tmp_path / "staff.json")
    staff.add(StaffMember("nurse.a", "Nurse Ann", ("WARD-A",)), "pw-ann-12345")
    staff.add(StaffMember("nurse.b", "Nurse Ben", ("WARD-B",)), "pw-ben-12345")
    env = {**worker_env(run_id, tmp_path, settings),
           "VITALSTREAM_WORKER__RULES_FILE": str(rules_file(tmp_path / "rules.json")),
           "VITALSTREAM_NOTIFY__REGISTRY_FILE": str(registry),
           "VITALSTREAM_STAFF__FILE": str(staff.path),
           "VITALSTREAM_STAFF__TOKEN_KEY": "test-token-key-" + run_id * 2,
           "VITALSTREAM_CONSOLE__PORT": str(CONSOLE_PORT)}
    worker = processes(["worker", "--loglevel", "info"], env, name="worker")
    worker.wait_for_log("Worker ready", 120)
    console = processes(["console"], env, name="console")
    console.wait_for_log("console running", 60)
    base = f"https://localhost:{CONSOLE_PORT}/"
    readings = prefix + "vitals.normalized"
    feed = [(pid_a, patients[0][1], "WARD-A"), (pid_b, patients[1][1], "WARD-B")]
    now = int(time.time() * 1000)
    # Three normal minutes (event time just behind the wall clock), so both have tiles.
    asyncio.run(produce_minutes(settings, readings, feed, now - 240_000, now - 60_000, 97.0))

    login(browser, base, "nurse.a", "pw-ann-12345")
    wait_until(lambda: tile(browser, pid_a) is not None, 30, "nurse A's tile")
    first = tile_text(browser, pid_a)
    assert "Ada Lovelace" in first and "WARD-A · bed 3" in first
    assert tile(browser, pid_b) is None  # another ward's patient
    hr = f'article.tile[data-pid="{pid_a}"] .vital[data-metric="heart_rate"] dd'
    wait_until(lambda: (text_of(browser, hr).split() or [""])[0] in
               {"72", "73", "74", "75", "76"}, 15, "heart rate on the tile")

    # Deterioration: a minute of SpO2 80 % for both; the window closes when it goes idle.
    # Event time at the wall clock: the alert machine escalates by the wall clock.
    since = int(time.time() * 1000)
    asyncio.run(produce_minutes(settings, readings, feed, since - 60_000, since, 80.0))
    selector = f'article.tile[data-pid="{pid_a}"] li.alert[data-rule="spo2_low"]'
    WebDriverWait(browser, 60, poll_frequency=0.05).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, selector))
    shown_ms = time.time() * 1000
    assert "HIGH" in text_of(browser, selector)
    browser.save_screenshot(str(tmp_path / "overview.png"))
    # The nurse acks as soon as she sees it; the test's own Kafka reads come
    # after, so that on a busy machine they do not eat the escalation window.
    # Her press straddles a rebuild of the tile (one comes at least every 5 s):
    # the button goes down before it and up after, and the ack must still count.
    press_across_rebuild(browser, pid_a, f"{selector} button.ack")
    wait_until(lambda: "acked by nurse.a" in tile_text(browser, pid_a), 20, "ack on the tile")
    alerts_topic = prefix + "alerts"
    raised = wait_until(lambda: [(ts, e) for ts, e in topic_records(settings, alerts_topic, since)
                                 if e["pid"] == pid_a and e["kind"] == "raised"], 20, "raised")
    kafka_ts, event = raised[0]
    latency_ms = shown_ms - kafka_ts
    print(f"alert on the tile {latency_ms:.0f} ms after it reached Kafka")
    assert latency_ms <= 2000, latency_ms
    alert_id = event["alert_id"]
    acked = wait_until(lambda: [e for _, e in topic_records(settings, alerts_topic, since)
                                if e["alert_id"] == alert_id and e["kind"] == "acknowledged"],
                       20, "acknowledged event")
    assert acked[0]["by"] == "nurse.a"
    audit = wait_until(lambda: influx_query(settings, "SELECT \"by\", alert_id FROM alert_acks "
                                            f"WHERE pid = '{pid_a}'"), 20, "ack audit")
    assert audit[0]["by"] == "nurse.a" and audit[0]["alert_id"] == alert_id
    # The un-acked patient of ward B escalates; ours, acked, must not.
    wait_until(lambda: [e for _, e in topic_records(settings, alerts_topic, since)
                        if e["pid"] == pid_b and e["kind"] == "escalated"],
               ESCALATE_AFTER_MS / 1000 + 30, "ward B's alert to escalate (control)")
    wait_until(lambda: time.time() * 1000 > event["ts_ms"] + ESCALATE_AFTER_MS + 3000, 40,
               "the acked alert's escalation time to pass")
    events = [e for _, e in topic_records(settings, alerts_topic, since) if e["pid"] == pid_a]
    assert [e["kind"] for e in events if e["kind"] == "escalated"] == [], [
        (e["kind"], e.get("alert_id"), e["ts_ms"] - event["ts_ms"], e.get("by")) for e in events]

    # Patient view: every vital's series drawn (the chart's data and its pixels).
    browser.get(f"{base}patients/{pid_a}")
    WebDriverWait(browser, 30).until(
        lambda d: d.find_element(By.ID, "patient").get_attribute("data-loaded"))
    for metric in ("heart_rate", "spo2", "respiratory_rate", "body_temperature",
                   "systolic_bp", "diastolic_bp"):
        points = browser.execute_script(
            "return window.vsCharts[arguments[0]].data[1].filter(v => v != null).length", metric)
        assert points >= 2, (metric, points)
        inked = browser.execute_script("""
            const c = document.querySelector(`.chart[data-metric="${arguments[0]}"] canvas`);
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 0; i < px.length; i += 4)
              if (px[i] === 0x15 && px[i + 1] === 0x65 && px[i + 2] === 0xc0) n++;
            return n;""", metric)
        assert inked > 20, (metric, inked)
    browser.save_screenshot(str(tmp_path / "patient.png"))
    for name in ("overview.png", "patient.png"):
        if REFRESH_DOCS_SCREENSHOTS:
            shutil.copy(tmp_path / name, DOCS / f"console-{name}")

    # A manual observation (new confusion) enters the pipeline; NEWS2 rescored.
    browser.find_element(By.CSS_SELECTOR, "#obs-acvpu option[value='C']").click()
    browser.find_element(By.ID, "obs-submit").click()
    wait_until(lambda: "recorded 1" in text_of(browser, "#obs-result"), 15,
               "the form's answer")
    scores = wait_until(lambda: [s for _, s in topic_records(settings, prefix + "vitals.scores",
                                                             since)
                                 if s["pid"] == pid_a
                                 and s.get("news2_parameters", {}).get("consciousness") == 3],
                        20, "NEWS2 with the new confusion")
    assert scores

    # A nurse of ward B sees neither ward A's tile nor its alert, nor its patient.
    browser.find_element(By.CSS_SELECTOR, "header form button").click()
    login(browser, base, "nurse.b", "pw-ben-12345")
    wait_until(lambda: tile(browser, pid_b) is not None, 30, "nurse B's tile")
    assert tile(browser, pid_a) is None
    assert alert_id not in browser.page_source and "Ada Lovelace" not in browser.page_source
    browser.get(f"{base}patients/{pid_a}")
    assert "403" in browser.title
