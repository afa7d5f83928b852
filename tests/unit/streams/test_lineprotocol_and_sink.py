import math

import pytest

from streams.sinks.errors import BackpressureError, SinkError, WriteRejectedError
from streams.sinks.influx import InfluxSink, InfluxTarget, InfluxWriter
from streams.sinks.lineprotocol import line
from streams.sinks.points import reading_lines


def test_line_escapes_tags_and_sorts_them():
    text = line("vitals", {"ward": "A 1,b=c", "metric": "heart_rate"}, {"value": 72.0}, 1000)
    assert text == r"vitals,metric=heart_rate,ward=A\ 1\,b\=c value=72.0 1000"


def test_non_finite_fields_are_left_out_and_empty_points_dropped():
    assert line("m", {}, {"a": math.nan, "b": 1}, 5) == "m b=1i 5"
    assert line("m", {}, {"a": math.inf}, 5) is None


def test_string_fields_are_quoted_and_escaped():
    assert line("m", {}, {"s": 'say "hi"\\'}, 1) == 'm s="say \\"hi\\"\\\\" 1'


def test_reading_points_are_deterministic_so_a_replay_overwrites():
    batch = {"pid": "p", "device": "d", "ward": None, "readings": [
        {"metric": "spo2", "value": 97, "ts_ms": 10, "quality": ["low_perfusion"]}]}
    assert list(reading_lines(batch)) == list(reading_lines(batch))
    assert list(reading_lines(batch)) == ['vitals,device=d,metric=spo2,pid=p '
                                          'value=97.0,quality="low_perfusion" 10']


def test_reading_points_equal_the_general_line_builder():
    readings = [{"metric": "heart_rate", "value": 72, "ts_ms": 1},
                {"metric": "spo2", "value": 96.5, "ts_ms": 2, "quality": []},
                {"metric": "spo2", "value": math.nan, "ts_ms": 3},
                {"metric": "spo2", "value": math.inf, "ts_ms": 4, "quality": ["motion", "low_battery"]},
                {"metric": "body_temperature", "value": 37.25, "ts_ms": 5, "quality": ["motion"]}]
    batch = {"pid": "p 1", "device": "d,1", "ward": "W=2", "readings": readings}
    expected = [line("vitals", {"pid": "p 1", "device": "d,1", "ward": "W=2", "metric": r["metric"]},
                     {"value": float(r["value"]),
                      "quality": ",".join(r["quality"]) if r.get("quality") else None}, r["ts_ms"])
                for r in readings]
    assert reading_lines(batch) == [e for e in expected if e is not None]
    assert len(reading_lines(batch)) == 4  # the NaN reading without quality has no field left


def test_user_of_a_shared_cuff_is_a_field_of_its_points():
    batch = {"pid": "p", "device": "cuff", "ward": None, "readings": [
        {"metric": "systolic_bp", "value": 125, "ts_ms": 10, "user_id": 2},
        {"metric": "systolic_bp", "value": 126, "ts_ms": 11}]}
    assert reading_lines(batch) == [
        line("vitals", {"pid": "p", "device": "cuff", "metric": "systolic_bp"},
             {"value": 125.0, "user_id": 2}, 10),
        "vitals,device=cuff,metric=systolic_bp,pid=p value=126.0 11"]


class ScriptedWriter(InfluxWriter):
    """A stand-in for the HTTP call, scripted per attempt (the real server is
    exercised in tests/integration)."""

    def __init__(self, outcomes, max_points=5000):
        super().__init__(InfluxTarget(api="v1", url="http://unused", batch_max_points=max_points))
        self.outcomes = list(outcomes)
        self.bodies: list[bytes] = []

    async def post(self, body: bytes) -> None:
        self.bodies.append(body)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if callable(outcome):
            outcome(body)
        elif outcome is not None:
            raise outcome


async def test_sink_waits_through_outages_and_backpressure_and_loses_nothing():
    writer = ScriptedWriter([SinkError("down"), BackpressureError(503, 0.01), None])
    sink = InfluxSink(writer, backoff_initial_ms=1)
    assert await sink.write(["m v=1 1", "m v=2 2"]) == []
    assert sink.points_written == 2 and sink.retries == 2
    assert writer.bodies[-1] == b"m v=1 1\nm v=2 2"


async def test_invalid_points_are_isolated_and_the_rest_written():
    def reject_bad(body: bytes) -> None:
        if b"bad" in body:
            raise WriteRejectedError("HTTP 400")

    writer = ScriptedWriter([reject_bad] * 20)
    sink = InfluxSink(writer, backoff_initial_ms=1)
    rejected = await sink.write(["m v=1 1", "bad 2", "m v=3 3", "m v=4 4"])
    assert rejected == ["bad 2"]
    assert sink.points_written == 3


@pytest.mark.parametrize("size", [1, 2, 3])
async def test_large_writes_are_chunked_by_batch_size(size):
    writer = ScriptedWriter([], max_points=size)
    await InfluxSink(writer).write([f"m v={i} {i}" for i in range(5)])
    assert len(writer.bodies) == -(-5 // size)


def test_fast_reading_lines_equal_the_general_line_builder():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    reading = st.fixed_dictionaries({
        "metric": st.sampled_from(["heart_rate", "spo2", "rr_interval"]),
        "value": st.floats(allow_nan=True, allow_infinity=True),
        "ts_ms": st.integers(0, 2**41),
        "quality": st.lists(st.sampled_from(["contact_lost", 'odd"flag\\']), max_size=2),
    })

    @settings(max_examples=200, deadline=None)
    @given(st.lists(reading, max_size=8), st.sampled_from([None, "W 1", "ICU,a=b"]))
    def check(readings, ward):
        batch = {"pid": "p1", "device": "dev 1", "ward": ward, "readings": readings}
        expected = [p for r in readings if (p := line(
            "vitals", {"pid": "p1", "device": "dev 1", "ward": ward, "metric": r["metric"]},
            {"value": float(r["value"]),
             "quality": ",".join(r["quality"]) if r["quality"] else None},
            r["ts_ms"])) is not None]
        assert list(reading_lines(batch)) == expected

    check()


def test_newlines_and_backslashes_never_split_or_forge_a_point():
    text = line("vitals", {"ward": "W1\nvitals,pid=x value=1 1", "bed": "B\\"},
                {"reason": "two\r\nlines \\ end\\", "value": 1.0}, 7)
    assert text is not None and "\n" not in text and "\r" not in text
    assert text == ('vitals,bed=B\\\\,ward=W1\\ vitals\\,pid\\=x\\ value\\=1\\ 1 '
                    'reason="two  lines \\\\ end\\\\",value=1.0 7')
    batch = {"pid": "p", "device": "d\n1", "ward": "W\\", "readings": [
        {"metric": "spo2", "value": 97, "ts_ms": 10, "quality": ["a\nb"]}]}
    assert reading_lines(batch) == ['vitals,device=d\\ 1,metric=spo2,pid=p,ward=W\\\\ '
                                    'value=97.0,quality="a b" 10']


@pytest.mark.parametrize(("status", "says"), [(401, "credentials"), (403, "privilege"),
                                              (404, "no such database")])
async def test_influx_401_403_404_are_fatal_configuration_errors(status, says):
    from streams.sinks.errors import InfluxConfigError
    from streams.sinks.influx import _classify

    error = _classify(status, {}, "refused")
    writer = ScriptedWriter([error, None])
    with pytest.raises(InfluxConfigError, match=says):
        await InfluxSink(writer, backoff_initial_ms=1).write(["m v=1 1"])
    assert len(writer.bodies) == 1  # not retried
    assert not error.retriable
