"""`python -m benchmarks.enroll`: how long giving devices their MQTT identities
takes on the running broker, with the one-process-per-command baseline.

- baseline: `mosquitto_ctrl` per command, as a shell script would enroll a
  device (createRole, addRoleACL, createClient, addClientRole: four
  processes, four connections).
- batched: `streams.ops.mqtt_admin.enroll_devices` (two commands per device,
  many per message, one control connection).
- one more: enrolling and revoking a single device with the others present.

Mosquitto 2.0 rewrites its whole dynamic-security file after every command,
so the cost of a command grows with the number of identities: the table
prints the broker's client count next to each figure. Every identity made
here is revoked at the end.
"""

from __future__ import annotations

import argparse
import subprocess
import time
import uuid

from streams.connections import mqtt_connection
from streams.ops.dynsec import DynsecControl
from streams.ops.mqtt_admin import DEVICE_PREFIX, enroll_devices, new_password, revoke_devices
from streams.settings import Settings


def client_count(settings: Settings) -> int:
    with DynsecControl(mqtt_connection(settings.mqtt, "admin")) as ctl:
        listing = ctl.run([{"command": "listClients", "count": -1}])[0]
    return len(listing.get("data", {}).get("clients", []))


def baseline(settings: Settings, devices: list[str]) -> float:
    admin = mqtt_connection(settings.mqtt, "admin")
    # (the admin password on argv: a benchmark on loopback only)
    ctl = ["mosquitto_ctrl", "-h", admin.host, "-p", str(admin.port), "-u", str(admin.username),
           "-P", str(admin.password)]
    if admin.ca_file is not None:
        ctl += ["--cafile", str(admin.ca_file)]
    started = time.perf_counter()
    for device in devices:
        role = f"{DEVICE_PREFIX}{device}"
        for args in (["createRole", role],
                     ["addRoleACL", role, "publishClientSend", f"devices/{device}/#", "allow"],
                     ["createClient", device, "-p", new_password()],
                     ["addClientRole", device, role]):
            subprocess.run([*ctl, "dynsec", *args], check=True, capture_output=True, timeout=60)
    return time.perf_counter() - started


def batched(settings: Settings, devices: list[str]) -> float:
    started = time.perf_counter()
    enroll_devices(mqtt_connection(settings.mqtt, "admin"),
                   [(d, new_password()) for d in devices])
    return time.perf_counter() - started


def revoke(settings: Settings, devices: list[str]) -> float:
    started = time.perf_counter()
    revoke_devices(mqtt_connection(settings.mqtt, "admin"), devices)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.enroll")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--baseline-devices", type=int, default=100,
                        help="devices for the mosquitto_ctrl baseline (slow)")
    args = parser.parse_args()
    settings = Settings()
    run = uuid.uuid4().hex[:6]
    small = [f"enr{run}-b{i:05d}" for i in range(args.baseline_devices)]
    same = [f"enr{run}-s{i:05d}" for i in range(args.baseline_devices)]
    large = [f"enr{run}-l{i:05d}" for i in range(args.devices)]
    rows: list[tuple[str, int, int, float]] = []
    try:
        before = client_count(settings)
        rows.append(("baseline mosquitto_ctrl", len(small), before, baseline(settings, small)))
        rows.append(("revoke (batched)", len(small), client_count(settings),
                     revoke(settings, small)))
        rows.append(("batched", len(same), client_count(settings), batched(settings, same)))
        rows.append(("revoke (batched)", len(same), client_count(settings),
                     revoke(settings, same)))
        rows.append(("batched", len(large), client_count(settings), batched(settings, large)))
        one = f"enr{run}-one"
        rows.append(("one more device", 1, client_count(settings), batched(settings, [one])))
        rows.append(("revoke one device", 1, client_count(settings), revoke(settings, [one])))
        rows.append(("revoke (batched)", len(large), client_count(settings),
                     revoke(settings, large)))
    finally:
        revoke(settings, small + same + large)
    print(f"{'what':<26} {'devices':>8} {'clients before':>15} {'s':>8} {'ms/device':>10}")
    for name, n, clients, seconds in rows:
        print(f"{name:<26} {n:>8} {clients:>15} {seconds:>8.2f} {1000 * seconds / n:>10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
