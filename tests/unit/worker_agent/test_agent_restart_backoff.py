"""The restart policy of a runner that ended after its replica was ready: CrashLoopBackOff's shape."""

from kingpost_worker_agent.restart_backoff import Backoff, RestartPolicy, next_restart

POLICY = RestartPolicy(initial_delay=1.0, max_delay=60.0, reset_after=120.0)


def test_a_runner_that_served_steadily_is_restarted_at_once() -> None:
    restart = next_restart(POLICY, Backoff(), ready_since=1000.0, now=1500.0)
    assert restart.at == 1500.0
    assert restart.backoff == Backoff(restarts=1, streak=1)


def test_a_runner_that_keeps_ending_soon_after_each_start_waits_longer_each_time_up_to_the_cap() -> None:
    backoff, now, delays = Backoff(), 0.0, []
    for _ in range(10):
        restart = next_restart(POLICY, backoff, ready_since=now + 5.0, now=now + 10.0)  # up 5 s, then ends
        delays.append(restart.at - (now + 10.0))
        backoff, now = restart.backoff, restart.at
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert backoff.restarts == 10


def test_ending_before_it_is_ready_again_counts_as_soon() -> None:
    first = next_restart(POLICY, Backoff(), ready_since=0.0, now=500.0)
    again = next_restart(POLICY, first.backoff, ready_since=None, now=510.0)
    assert again.at == 511.0


def test_staying_ready_for_reset_after_forgives_the_past() -> None:
    looping = Backoff(restarts=7, streak=5)  # the next exit in the streak waits 16 s
    assert next_restart(POLICY, looping, ready_since=100.0, now=219.0).at == 219.0 + 16.0
    steady = next_restart(POLICY, looping, ready_since=100.0, now=220.0)
    assert steady.at == 220.0 and steady.backoff == Backoff(restarts=8, streak=1)


def test_a_very_long_streak_stays_at_the_cap() -> None:
    assert next_restart(POLICY, Backoff(5000, 5000), ready_since=None, now=0.0).at == 60.0
