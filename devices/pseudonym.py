"""Patient pseudonyms: HMAC-SHA256 of the patient id under a secret key.

The key lives with the gateway (and the enrollment tool); without it a
pseudonym cannot be linked back to a patient, and with it only by
recomputing it for a known id (a keyed hash, not encryption: there is no
"decrypt"). Everything downstream of the gateway (Kafka, Faust, InfluxDB)
sees only the pseudonym. Re-identification for a nurse happens in the
notifier, through the registry's ward/bed, never by reversing this.
"""

from __future__ import annotations

import hashlib
import hmac

# 128 bits of the HMAC: collision-free for any realistic hospital population
# and half the length in every InfluxDB tag and Kafka key.
PSEUDONYM_HEX_CHARS = 32
MIN_KEY_BYTES = 16


class Pseudonymizer:
    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"pseudonym key must have at least {MIN_KEY_BYTES} bytes")
        self._key = key
        self._cache: dict[str, str] = {}

    def pseudonym(self, patient_id: str) -> str:
        cached = self._cache.get(patient_id)
        if cached is None:
            digest = hmac.new(self._key, patient_id.encode(), hashlib.sha256).hexdigest()
            cached = digest[:PSEUDONYM_HEX_CHARS]
            self._cache[patient_id] = cached
        return cached

    def __repr__(self) -> str:  # never print the key
        return "Pseudonymizer(key=***)"
