"""Pure domain computation for vitalstream.

No I/O, no asyncio, no Faust, MQTT, HTTP or pydantic here: only numpy, scipy
and the standard library. Time is always passed in (integer epoch ms).
"""
