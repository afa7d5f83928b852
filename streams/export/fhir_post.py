"""Send a transaction Bundle to a FHIR server (`export fhir --post URL`), with retries.

A transaction is all-or-nothing on the server, and our Observations are PUT
by derived ids, so sending it again after a timeout cannot duplicate data:
connection errors, 429 and 5xx are retried with exponential backoff; any
other answer is final.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from analytics.backoff import Backoff
from streams.export.errors import FhirPostError

log = logging.getLogger(__name__)
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}


def post_bundle(url: str, bundle: dict[str, Any], *, attempts: int = 5, backoff_ms: int = 1000,
                timeout_s: float = 30.0, ca_file: str | None = None,
                sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """POST the Bundle to the server's base URL; returns the transaction-response Bundle."""
    body = json.dumps(bundle).encode()
    context = ssl.create_default_context(cafile=ca_file) if url.startswith("https") else None
    last = "no attempt"
    # Doubling from backoff_ms, no cap within the attempts.
    backoff = Backoff(backoff_ms, backoff_ms * 2 ** max(attempts - 2, 0))
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url.rstrip("/"), data=body, method="POST", headers={
            "Content-Type": "application/fhir+json", "Accept": "application/fhir+json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s, context=context) as resp:  # noqa: S310
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code not in RETRY_STATUSES:
                raise FhirPostError(f"FHIR server answered HTTP {exc.code}: "
                                    f"{exc.read()[:300].decode(errors='replace')}") from exc
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            last = type(exc).__name__
        if attempt < attempts:
            delay_s = backoff.next_s()
            log.warning("FHIR post failed, retrying attempt=%d error=%s in_s=%.1f",
                        attempt, last, delay_s)
            sleep(delay_s)
    raise FhirPostError(f"FHIR server unreachable after {attempts} attempts (last: {last})")
