import socket

import pytest

from streams.ops.errors import PortInUseError
from streams.ops.process import ManagedProcess, require_free_port


def test_a_taken_port_is_reported_with_its_number_and_service():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} for kafka"):
            require_free_port("kafka", port)


def test_stop_signals_only_the_process_it_started(tmp_path):
    proc = ManagedProcess("sleeper", tmp_path / "run", tmp_path / "logs")
    pid = proc.start(["sleep", "30"])
    assert proc.pid() == pid
    assert proc.stop(timeout_s=5) is True
    assert proc.pid() is None
    assert proc.stop() is False  # safe to call twice


def test_a_stale_pid_file_is_not_trusted(tmp_path):
    proc = ManagedProcess("ghost", tmp_path / "run", tmp_path / "logs")
    proc.run_dir.mkdir(parents=True)
    # pid 1 exists but was not started by us: start time differs.
    proc.pid_file.write_text('{"pid": 1, "start_ticks": -5, "argv": []}')
    assert proc.pid() is None
    assert proc.stop() is False


def test_kraft_cluster_ids_never_look_like_an_option():
    from streams.ops.kafka import _kraft_cluster_id

    ids = {_kraft_cluster_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


def test_worker_state_goes_with_a_wiped_kafka_storage_and_only_inside_the_stack(tmp_path):
    """After Kafka's dev storage is formatted afresh, the workers' RocksDB state
    names changelog offsets past the new topics' end; Faust would refuse to start
    on it (ConsistencyError), so the stack drops it. Nothing outside its dir."""
    from streams.ops.stack import NativeStack
    from streams.settings import Settings

    root, outside = tmp_path / "stack", tmp_path / "elsewhere-worker"
    settings = Settings(stack={"dir": root}, worker={"data_dir": outside})
    stack = NativeStack(settings)
    demo_state = root / "demo" / "worker" / "v1" / "tables"
    demo_state.mkdir(parents=True)
    outside.mkdir()
    stack._drop_worker_state()
    assert not (root / "demo" / "worker").exists()
    assert outside.exists()  # not the stack's to delete

    settings = Settings(stack={"dir": root}, worker={"data_dir": root / "worker"})
    (root / "worker" / "tables").mkdir(parents=True)
    NativeStack(settings)._drop_worker_state()
    assert not (root / "worker").exists()
