"""`ConsoleSettings` (env ``VITALSTREAM_CONSOLE__...``): the ward console's listener and feed."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ConsoleSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8443
    # Prefix of the console's Kafka group ids (the broker's ACLs grant it by prefix).
    group_id: str = "vitalstream-console"
    sse_keepalive_s: float = Field(default=15.0, gt=0)
    # The patient view zooms from 1-minute features to raw readings below this span.
    raw_below_s: int = Field(default=1800, ge=60)
