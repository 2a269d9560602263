"""When `kingpost up` starts a dead service again: backoff, forgiveness, giving up. Pure, times given."""

import pytest

from kingpost.restart_policy import RestartPolicy, after_death

POLICY = RestartPolicy(first_delay=0.1, max_delay=10.0, healthy_after=30.0, report_after=3, give_up_after=10)


def deaths(runs: list[float]):
    """(delay before the restart, decision) for a process that runs `runs[i]` seconds each time."""
    out, quick, started = [], 0, 1000.0
    for run in runs:
        decision = after_death(POLICY, quick_deaths=quick, started_at=started, died_at=started + run)
        if decision.give_up:
            out.append((None, decision))
            break
        out.append((decision.restart_at - (started + run), decision))
        quick, started = decision.quick_deaths, decision.restart_at
    return out


def test_a_first_death_is_restarted_at_once():
    decision = after_death(POLICY, quick_deaths=0, started_at=100.0, died_at=500.0)
    assert decision.restart_at == pytest.approx(500.1)
    assert (decision.quick_deaths, decision.crash_looping, decision.give_up) == (1, False, False)


def test_quick_deaths_in_a_row_back_off_exponentially_up_to_the_cap():
    delays = [delay for delay, _ in deaths([1.0] * 9)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0])


def test_a_service_that_keeps_dying_is_reported_then_given_up_on():
    decisions = [decision for _, decision in deaths([1.0] * 20)]
    assert [d.crash_looping for d in decisions[:4]] == [False, False, True, True]
    assert len(decisions) == 10  # the tenth quick death in a row is the last
    assert decisions[-1].give_up and decisions[-1].restart_at is None
    assert not any(d.give_up for d in decisions[:-1])


def test_a_healthy_run_forgives_the_deaths_before_it():
    out = deaths([1.0, 1.0, 1.0, 1.0, 45.0, 1.0])
    assert [d.quick_deaths for _, d in out] == [1, 2, 3, 4, 1, 2]
    # After the healthy run, the next death is restarted fast again and not reported.
    delay, decision = out[4]
    assert delay == pytest.approx(0.1) and not decision.crash_looping


def test_a_run_just_short_of_healthy_still_counts_as_quick():
    assert after_death(POLICY, quick_deaths=4, started_at=0.0, died_at=29.9).quick_deaths == 5
    assert after_death(POLICY, quick_deaths=4, started_at=0.0, died_at=30.0).quick_deaths == 1


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"first_delay": 20.0, "max_delay": 10.0}, "first_delay 20.0"),
    ({"first_delay": -1.0}, "first_delay -1.0"),
    ({"report_after": 11, "give_up_after": 10}, "report_after 11"),
])
def test_an_inconsistent_policy_is_refused_naming_the_field(kwargs, named):
    with pytest.raises(ValueError, match=named):
        RestartPolicy(**kwargs)
