"""Reading `vitals.normalized` records (streams/pipeline/inputs.py): the quick
path (orjson and a plain-shape check) gives exactly what the exact path (the
stdlib json and pydantic's ReadingBatch, what the worker did before) gives,
for every record: the same dict, with the same types, or the same rejection
reason and detail. The worker and the points follower both read through it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.records import Reading, ReadingBatch, RejectReason
from streams.pipeline import inputs
from streams.pipeline.inputs import Rejection, parse_reading_batches, read_reading_batch
from streams.sinks.follower import record_lines
from streams.sinks.points import reading_lines

T = 1_700_000_040_000


def gateway_record(**overrides: Any) -> dict[str, Any]:
    """A record as the gateway writes it (ReadingBatch.to_bytes), as a dict."""
    batch = ReadingBatch(
        pid="5f3c9a" * 5, device="wr-00042", ward="W2", source="json", msg_id="m-1",
        received_ms=T + 50, readings=[
            Reading(metric="heart_rate", loinc="8867-4", unit="/min", value=72.0, ts_ms=T),
            Reading(metric="spo2", loinc="59408-5", unit="%", value=97.5, ts_ms=T,
                    quality=["low_perfusion", "questionable"]),
            Reading(metric="body_weight", unit="kg", value=81.25, ts_ms=T, user_id=3),
        ])
    return {**json.loads(batch.to_bytes()), **overrides}


def reading(**overrides: Any) -> dict[str, Any]:
    return {"metric": "heart_rate", "unit": "/min", "value": 72.0, "ts_ms": T, **overrides}


def dumps(record: Any) -> bytes:
    return json.dumps(record).encode()


def same(raw: Any) -> Any:
    """The quick path's answer, checked against the exact path's, types included
    (1 == 1.0 == True in Python: repr tells them apart)."""
    got, want = read_reading_batch(raw), inputs._read_exact(raw)
    assert repr(got) == repr(want)
    assert type(got) is type(want)
    return got


GOOD = [
    gateway_record(),
    gateway_record(ward=None),
    {k: v for k, v in gateway_record().items() if k != "ward"},
    gateway_record(readings=[]),
    gateway_record(readings=[reading(value=72), reading(value=-0.0),
                             reading(loinc=None, quality=[], user_id=None),
                             reading(user_id=0), reading(user_id=254)]),
    # Non-ASCII, as UTF-8 and as \u escapes (json.dumps' default).
    gateway_record(device="Gerät-ü-1", ward="Station 3 – Süd", source="senml/✓",
                   readings=[reading(unit="µmol/L"), reading(metric="hr😀")]),
    # 64-bit integers: orjson keeps these as ints.
    gateway_record(received_ms=2**63 - 1, readings=[reading(ts_ms=-(2**63)),
                                                    reading(value=2**64 - 1)]),
]
# Good, but past the plain shape's range: the exact path reads them.
GOOD_EXACT = [gateway_record(readings=[reading(value=1e300)]),
              gateway_record(readings=[reading(value=-9.5e18)])]
BAD = [
    gateway_record(ward=7),
    gateway_record(v=2),
    gateway_record(v=True),
    gateway_record(v="1"),
    {k: v for k, v in gateway_record().items() if k != "v"},
    {k: v for k, v in gateway_record().items() if k != "msg_id"},
    {k: v for k, v in gateway_record().items() if k != "pid"},
    gateway_record(patient_id="x"),
    gateway_record(received_ms=1.5),
    gateway_record(received_ms="5"),
    gateway_record(readings={}),
    gateway_record(readings=[[1]]),
    gateway_record(readings=[reading(value=float("nan"))]),
    gateway_record(readings=[reading(value=float("inf"))]),
    gateway_record(readings=[reading(value=float("-inf"))]),
    gateway_record(readings=[reading(value="72")]),
    gateway_record(readings=[reading(value=True)]),
    gateway_record(readings=[reading(value=None)]),
    gateway_record(readings=[reading(ts_ms=1.0)]),
    gateway_record(readings=[reading(ts_ms=None)]),
    gateway_record(readings=[reading(quality=None)]),
    gateway_record(readings=[reading(quality=["bent"])]),
    gateway_record(readings=[reading(quality=[["artifact"]])]),
    gateway_record(readings=[reading(quality="artifact")]),
    gateway_record(readings=[reading(user_id=255)]),
    gateway_record(readings=[reading(user_id=-1)]),
    gateway_record(readings=[reading(user_id=1.0)]),
    gateway_record(readings=[reading(loinc=7)]),
    gateway_record(readings=[reading(extra=1)]),
    gateway_record(readings=[{"metric": "spo2", "unit": "%", "ts_ms": T}]),
    [1, 2],
    "a string",
    7,
    None,
]
# Beyond 64 bits orjson gives a float where the stdlib keeps the int.
LARGE_INTS = [
    gateway_record(received_ms=2**64),
    gateway_record(readings=[reading(ts_ms=10**30)]),
    gateway_record(readings=[reading(ts_ms=-(2**63) - 1)]),
    gateway_record(readings=[reading(value=2**64)]),
    gateway_record(readings=[reading(value=-(10**25))]),
    gateway_record(readings=[reading(value=10**400)]),
    gateway_record(readings=[reading(user_id=2**70)]),
]
RAW = [
    b"",
    b"\xff\x00not json",
    b"{",
    dumps(gateway_record())[:-1],
    b"\xef\xbb\xbf" + dumps(gateway_record()),  # a UTF-8 byte order mark
    json.dumps(gateway_record()).encode("utf-16"),
    dumps(gateway_record(device="\ud800")),  # a lone surrogate, as \ud800
    dumps(gateway_record(readings=[reading(value=1e400)])).replace(b"Infinity", b"1e400"),
    dumps(gateway_record()).replace(b'"pid"', b'"pid": "first", "pid"'),  # a duplicate key
    b'{"v":1,"pid":"p","device":"d","source":"s","msg_id":"m","received_ms":1,'
    b'"readings":[{"metric":"m","unit":"u","value":NaN,"ts_ms":1}]}',
    None,
    bytearray(dumps(gateway_record())),
]


@pytest.mark.parametrize("record", GOOD + GOOD_EXACT, ids=range(len(GOOD + GOOD_EXACT)))
def test_gateway_records_are_read_as_the_exact_path_reads_them(record):
    raw = dumps(record)
    assert same(raw) == record
    assert same(json.dumps(record, ensure_ascii=False).encode()) == record


@pytest.mark.parametrize("record", BAD + LARGE_INTS, ids=range(len(BAD + LARGE_INTS)))
def test_bad_records_get_the_same_reason_and_detail(record):
    same(dumps(record))


@pytest.mark.parametrize("raw", RAW, ids=range(len(RAW)))
def test_bytes_that_are_not_plain_json_get_the_same_answer(raw):
    same(raw)


def test_large_ints_keep_their_exact_value():
    got = same(dumps(gateway_record(received_ms=2**64, readings=[reading(ts_ms=10**30)])))
    assert got["received_ms"] == 2**64 and got["readings"][0]["ts_ms"] == 10**30


def test_the_reasons_a_dead_letter_says():
    detail = {
        "ward": "ward: string_type",
        "nan": "readings.0.value: finite_number",
        "v2": "record version 2 not supported by this worker",
    }
    got = [read_reading_batch(dumps(r)) for r in (
        gateway_record(ward=7), gateway_record(readings=[reading(value=float("nan"))]),
        gateway_record(v=2))]
    assert got == [Rejection(RejectReason.INVALID_RECORD, detail["ward"]),
                   Rejection(RejectReason.INVALID_RECORD, detail["nan"]),
                   Rejection(RejectReason.UNSUPPORTED_VERSION, detail["v2"])]
    assert read_reading_batch(b"[1]") == Rejection(RejectReason.MALFORMED,
                                                   "not a reading batch record")
    assert read_reading_batch(b"\xff") == Rejection(RejectReason.MALFORMED, "record is not JSON")


def test_a_gateway_record_is_read_without_pydantic(monkeypatch):
    # What makes reading cheap: the plain shape never reaches the exact path.
    def refuse(raw):
        raise AssertionError("exact path taken")

    monkeypatch.setattr(inputs, "_read_exact", refuse)
    for record in GOOD:
        assert read_reading_batch(dumps(record)) == record


def test_a_batch_of_good_and_bad_records_is_split_with_raw_bytes_kept():
    raws = [dumps(gateway_record()), dumps(gateway_record(ward=7)), b"\xff"]
    parsed = parse_reading_batches(raws, "vitals.normalized")
    assert parsed.batches == [gateway_record()] and parsed.sources == [0]
    assert [(d.reason, d.mqtt_topic) for d in parsed.dead_letters] == [
        (RejectReason.INVALID_RECORD, "kafka:vitals.normalized"),
        (RejectReason.MALFORMED, "kafka:vitals.normalized")]


@pytest.mark.parametrize("record", GOOD + BAD, ids=range(len(GOOD + BAD)))
def test_the_follower_writes_the_points_it_wrote_before(record):
    raw = dumps(record)
    old = inputs._read_exact(raw)
    want = None if isinstance(old, Rejection) else reading_lines(old)
    assert record_lines("readings", raw) == want


# -- properties: near-valid records, mutated ----------------------------------------

_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70), st.booleans(), st.none(),
    st.text(max_size=3))
_texts = st.one_of(st.text(max_size=8), _numbers)
_flags = st.lists(st.one_of(st.sampled_from(["artifact", "contact_lost", "questionable",
                                             "low_perfusion", "Artifact"]), _numbers),
                  max_size=3)


@st.composite
def near_readings(draw: st.DrawFn) -> dict[str, Any]:
    r: dict[str, Any] = {"metric": draw(st.one_of(st.just("spo2"), _texts)),
                         "unit": draw(st.one_of(st.just("%"), _texts)),
                         "value": draw(st.one_of(st.floats(0, 300), _numbers)),
                         "ts_ms": draw(st.one_of(st.just(T), _numbers))}
    for key, values in (("loinc", _texts), ("quality", st.one_of(_flags, _numbers)),
                        ("user_id", st.one_of(st.integers(-2, 256), _numbers)),
                        ("bogus", _numbers)):
        if draw(st.integers(0, 3)) == 0:
            r[key] = draw(values)
    for key in list(r):
        if draw(st.integers(0, 15)) == 0:
            del r[key]
    return r


@st.composite
def near_records(draw: st.DrawFn) -> dict[str, Any]:
    record = gateway_record(readings=draw(st.lists(near_readings(), max_size=4)))
    for key in list(record):
        if key != "readings" and draw(st.integers(0, 8)) == 0:
            record[key] = draw(_texts)
        if draw(st.integers(0, 15)) == 0:
            del record[key]
    return record


@settings(max_examples=400, deadline=None)
@given(near_records(), st.booleans())
def test_near_valid_records_get_the_exact_paths_answer(record, ascii_only):
    same(json.dumps(record, ensure_ascii=ascii_only).encode())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                          st.from_regex(r"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,25})?"
                                        r"([eE][-+]?[0-9]{1,3})?", fullmatch=True)),
                min_size=1, max_size=5))
def test_numbers_parse_to_the_same_floats(numbers):
    values = ",".join(n if isinstance(n, str) else repr(n) for n in numbers)
    readings = ",".join(f'{{"metric":"m","unit":"u","value":{v},"ts_ms":1}}'
                        for v in values.split(","))
    same(b'{"v":1,"pid":"p","device":"d","source":"s","msg_id":"m","received_ms":1,'
         b'"readings":[' + readings.encode() + b"]}")
