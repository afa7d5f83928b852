"""The soak's fleet split: every device in exactly one publishing process,
none holding more than the select() limit allows."""

from benchmarks.faults.shards import DEVICES_PER_PROCESS, shard_ranges


def test_every_device_in_exactly_one_shard() -> None:
    for devices in (1, 249, 250, 251, 500, 1001):
        ranges = shard_ranges(devices)
        indexes = [i for r in ranges for i in r]
        assert indexes == list(range(devices))
        assert all(0 < len(r) <= DEVICES_PER_PROCESS for r in ranges)


def test_500_wearables_need_two_processes() -> None:
    assert [len(r) for r in shard_ranges(500)] == [250, 250]
    assert [len(r) for r in shard_ranges(501)] == [167, 167, 167]
