"""Following a log file that a runner appends to: each complete line once, resumable from an offset."""

from pathlib import Path

from kingpost_worker_agent.runner_output import MAX_LINE_BYTES, OutputTail, end_of


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def texts(lines: list[tuple[bytes, int]]) -> list[bytes]:
    return [line for line, _ in lines]


def test_lines_arrive_once_and_a_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "rep.log"
    tail = OutputTail(path)
    assert texts(tail.read_lines()) == []  # the runner has not created it yet
    append(path, b"one\ntw")
    assert texts(tail.read_lines()) == [b"one"]
    append(path, b"o\r\nthree\n")
    assert tail.read_lines() == [(b"two", 9), (b"three", 15)]  # each with the offset just past it
    assert tail.read_lines() == []
    assert tail.offset == path.stat().st_size


def test_the_last_line_of_an_ended_runner_counts_without_a_newline(tmp_path: Path) -> None:
    path = tmp_path / "rep.log"
    append(path, b"Segmentation fault")
    tail = OutputTail(path)
    assert texts(tail.read_lines()) == []
    assert texts(tail.read_lines(final=True)) == [b"Segmentation fault"]
    append(path, b"next runner\n")
    assert texts(tail.read_lines()) == [b"next runner"]


def test_a_new_tail_resumes_at_the_offset_the_last_one_reached(tmp_path: Path) -> None:
    path = tmp_path / "rep.log"
    append(path, b"shipped\n")
    first = OutputTail(path)
    assert texts(first.read_lines()) == [b"shipped"]
    first.close()
    append(path, b"written while no agent watched\n")
    assert texts(OutputTail(path, first.offset).read_lines()) == [b"written while no agent watched"]


def test_a_new_replica_starts_after_what_its_file_already_holds(tmp_path: Path) -> None:
    path = tmp_path / "rep.log"
    assert end_of(path) == 0
    append(path, b"old\n")
    tail = OutputTail(path, end_of(path))
    append(path, b"new\n")
    assert texts(tail.read_lines()) == [b"new"]


def test_a_truncated_file_is_read_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "rep.log"
    append(path, b"a long first line\n")
    tail = OutputTail(path)
    texts(tail.read_lines())
    path.write_bytes(b"after\n")
    assert texts(tail.read_lines()) == [b"after"]


def test_a_runaway_line_is_cut_at_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "rep.log"
    append(path, b"x" * (MAX_LINE_BYTES + 10) + b"\nend\n")
    lines = OutputTail(path).read_lines()
    assert [(len(line), end) for line, end in lines] == [
        (MAX_LINE_BYTES, MAX_LINE_BYTES), (10, MAX_LINE_BYTES + 11), (3, MAX_LINE_BYTES + 15)]
