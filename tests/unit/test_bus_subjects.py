"""Subjects, streams and their matching (kingpost.bus.subjects): the names every service shares."""

from __future__ import annotations

import re

import pytest

from kingpost.bus import subjects as s
from kingpost.errors import InvalidArgument


def test_each_subject_is_spelled_as_the_services_and_the_docs_expect() -> None:
    assert s.build_subject("bld_1") == "kp.build.bld_1"
    assert s.replica_subject("rep_1") == "kp.replica.rep_1"
    assert s.node_subject("node_1") == "kp.node.node_1"
    assert s.scale_poke_subject("dep_1") == "kp.metrics.poke.dep_1"
    assert s.build_log_subject("bld_1") == "kp.logs.build.bld_1"
    assert s.replica_log_subject("dep_1", "rep_1") == "kp.logs.replica.dep_1.rep_1"
    assert s.replica_logs_of("dep_1") == "kp.logs.replica.dep_1.>"
    assert s.async_request_subject("dep_1", 2) == "kp.async.dep_1.2"


def test_a_router_named_after_a_dotted_host_name_still_publishes_one_token() -> None:
    subject = s.concurrency_subject("router-ip-10-0-0-1.ec2.internal")
    assert subject == "kp.metrics.concurrency.router-ip-10-0-0-1_ec2_internal"


@pytest.mark.parametrize("bad", ["", "a.b", "a*", "a>", "a b"])
def test_an_id_that_would_break_a_subject_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(f"replica_id {bad!r}")):
        s.replica_subject(bad)


def test_an_async_priority_outside_0_to_2_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="priority 3 is not one of 0, 1, 2"):
        s.async_request_subject("dep_1", 3)


@pytest.mark.parametrize(("pattern", "subject", "expected"), [
    ("kp.build.>", "kp.build.bld_1", True),
    ("kp.build.>", "kp.build", False),
    ("kp.logs.>", "kp.logs.replica.dep_1.>", True),  # a filter inside the stream
    ("kp.logs.replica.*.rep_1", "kp.logs.replica.dep_1.rep_1", True),
    ("kp.logs.replica.*.rep_1", "kp.logs.replica.dep_1.rep_2", False),
    ("kp.logs.replica.*", "kp.logs.replica.dep_1.rep_1", False),
    ("kp.logs.replica.dep_1", "kp.logs.replica.*", False),  # a wider filter is not inside a literal
    ("kp.node.*", "kp.node.>", False),
])
def test_matching_follows_nats_wildcards(pattern: str, subject: str, expected: bool) -> None:
    assert s.matches(pattern, subject) is expected


def test_each_subject_is_stored_in_its_stream_and_plain_ones_in_none() -> None:
    assert s.stream_of("kp.build.bld_1") == s.EVENTS_STREAM
    assert s.stream_of("kp.replica.>") == s.EVENTS_STREAM
    assert s.stream_of("kp.logs.replica.dep_1.>") == s.LOGS_STREAM
    assert s.stream_of("kp.async.dep_1.0") == s.ASYNC_STREAM
    assert s.stream_of("kp.node.node_1") is None
    assert s.stream_of("kp.metrics.poke.dep_1") is None
    assert [st.name for st in s.STREAMS] == ["KP_EVENTS", "KP_LOGS", "KP_ASYNC"]
    assert s.ASYNC_STREAM.work_queue and not s.EVENTS_STREAM.work_queue
