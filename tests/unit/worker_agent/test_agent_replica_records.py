"""The per-replica records an agent leaves for the next one on its work dir."""

from pathlib import Path

from kingpost_worker_agent.replica_records import ReplicaRecord, ReplicaRecords


def test_a_record_reads_back_as_written_and_a_rewrite_replaces_it(tmp_path: Path) -> None:
    records = ReplicaRecords(tmp_path / "replicas")
    assert records.read_all() == []  # no directory yet
    first = ReplicaRecord("rep_a", "dep_a", "mdl_a", "sha256:" + "ab" * 32, "production", pid=41,
                          start_ticks=7, port=5000, ready_once=True, ready_since=1.5, restarts=2, streak=1,
                          log_offset=99)
    records.write(first)
    records.write(ReplicaRecord("rep_b", "dep_a", pid=42))
    later = ReplicaRecord("rep_a", "dep_a", pid=43, log_offset=120)
    records.write(later)
    assert records.read_all() == [later, ReplicaRecord("rep_b", "dep_a", pid=42)]
    assert sorted(p.name for p in (tmp_path / "replicas").iterdir()) == ["rep_a.json", "rep_b.json"]
    records.remove("rep_a")
    records.remove("rep_a")  # twice is harmless
    assert [r.replica_id for r in records.read_all()] == ["rep_b"]


def test_an_unreadable_or_misnamed_record_is_dropped(tmp_path: Path) -> None:
    records = ReplicaRecords(tmp_path)
    records.write(ReplicaRecord("rep_ok", "dep"))
    (tmp_path / "rep_torn.json").write_text('{"replica_id": "rep_to')
    (tmp_path / "rep_other.json").write_text('{"replica_id": "rep_x", "deployment_id": "dep"}')
    assert [r.replica_id for r in records.read_all()] == ["rep_ok"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep_ok.json"]
