"""Invariants of `decide` over random settings and random load, stepped every 2 s by a fake clock."""

from hypothesis import given, settings as hsettings, strategies as st

from kingpost.autoscaling_settings import AutoscalingSettings
from kingpost_autoscaler.decision import Sample, ScaleState, clamp, decide


@st.composite
def scenarios(draw):
    low = draw(st.integers(0, 3))
    s = AutoscalingSettings(
        min_replica=low, max_replica=draw(st.integers(max(low, 1), 12)),
        concurrency_target=draw(st.integers(1, 4)), target_utilization_percentage=draw(st.integers(1, 100)),
        autoscaling_window=draw(st.sampled_from([2, 10, 60])), scale_down_delay=draw(st.sampled_from([0, 10, 60])))
    # (seconds, load) segments: bursts, steps, silences.
    segments = draw(st.lists(st.tuples(st.integers(1, 40), st.sampled_from([0, 0, 0.3, 1, 3, 10, 50])),
                             min_size=1, max_size=12))
    start = draw(st.integers(0, 5))
    return s, segments, start


def run(s: AutoscalingSettings, segments, start: int):
    """[(now, desired, recorded-before-hold, panicking)] and the per-second loads."""
    state = ScaleState.start(start, 0.0)
    samples: list[Sample] = []
    out = []
    now = 0
    for seconds, load in segments:
        for _ in range(seconds):
            now += 1
            samples.append(Sample(float(now), load))
            if now % 2 == 0:
                before = state
                desired, state = decide(s, samples, state, float(now))
                out.append((now, desired, state.recent[-1][1], before.panicking and state.panicking))
    return out, samples


@hsettings(max_examples=150, deadline=None)
@given(scenarios())
def test_never_outside_min_and_max(scenario) -> None:
    s, segments, start = scenario
    decisions, _ = run(s, segments, start)
    assert all(s.min_replica <= d <= s.max_replica for _, d, _, _ in decisions)


@hsettings(max_examples=150, deadline=None)
@given(scenarios())
def test_never_down_during_the_delay_after_load(scenario) -> None:
    s, segments, start = scenario
    decisions, _ = run(s, segments, start)
    for i, (t, _, recorded, _) in enumerate(decisions):
        for t2, d2, _, _ in decisions[i:]:
            if t2 - t >= s.scale_down_delay:
                break
            assert d2 >= clamp(s, recorded), (t, recorded, t2, d2)


@hsettings(max_examples=150, deadline=None)
@given(scenarios())
def test_zero_only_after_the_delay_of_silence(scenario) -> None:
    s, segments, start = scenario
    decisions, samples = run(s, segments, start)
    for t, d, _, _ in decisions:
        if d == 0:
            silent_since = t - s.scale_down_delay  # no traffic for a whole delay before going to zero
            assert all(x.concurrency == 0 for x in samples if x.at > silent_since and x.at <= t), t
            if start > 0:
                assert t >= s.scale_down_delay


@hsettings(max_examples=150, deadline=None)
@given(scenarios())
def test_never_down_while_panicking(scenario) -> None:
    s, segments, start = scenario
    decisions, _ = run(s, segments, start)
    for (_, d1, _, _), (_, d2, _, still) in zip(decisions, decisions[1:]):
        if still:
            assert d2 >= d1
