"""`vitalstream compose render [--check]` and `vitalstream compose init`.

render: the configuration files docker/compose.yaml mounts, rendered from
the native stack's templates into docker/compose/rendered/
(streams/ops/compose.py). init: the deployment's dev CA, credentials and
broker identities, run by the compose `init` service (streams/ops/compose_init.py).
topics: the topics and Kafka ACLs as `stack up` makes them (the `topics` service).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from streams.ops.compose import write_rendered


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("compose", help="the container deployment: render its configuration, "
                            "or make its secrets (in the init container)")
    parser.add_argument("action", choices=["render", "init", "topics"])
    parser.add_argument("--check", action="store_true",
                        help="render: exit 1 if the rendered files differ from the templates (for CI)")
    parser.add_argument("--secrets-dir", type=Path, default=Path("/etc/vitalstream/secrets"),
                        help="init: the secrets volume")
    parser.add_argument("--mosquitto-data", type=Path, default=Path("/mosquitto/data"),
                        help="init: Mosquitto's data volume (its dynamic-security file)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "topics":
        import asyncio

        from streams.ops.compose_init import topics_and_acls
        from streams.settings import Settings

        created, acls = asyncio.run(topics_and_acls(Settings()))
        print(f"kafka: {len(created)} topics created, {acls} ACL entries ensured")
        return 0
    if args.action == "init":
        from streams.ops.compose_init import provision
        from streams.settings import Settings

        result = provision(Settings(), args.secrets_dir, args.mosquitto_data)
        print(f"compose secrets ready: {len(result.written)} files made, the rest kept")
        return 0
    stale = write_rendered(check=args.check)
    if stale:
        print("stale (run `vitalstream compose render`): " + ", ".join(stale))
        return 1
    print("docker/compose/rendered and docker/influxdb2/tasks are " +
          ("current" if args.check else "written"))
    return 0
