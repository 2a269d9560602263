"""The scaling rule, stepped by hand: a fake clock is just the `now` each call is given."""

from kingpost.autoscaling_settings import AutoscalingSettings
from kingpost_autoscaler.decision import (
    Sample,
    ScaleState,
    average_concurrency,
    decide,
    idle_to_deactivate,
    panic_window,
)

SETTINGS = AutoscalingSettings(min_replica=0, max_replica=10, concurrency_target=1,
                               target_utilization_percentage=70, autoscaling_window=60, scale_down_delay=300)


def steady(load: float, start: float, end: float) -> list[Sample]:
    """One sample per second in [start, end]."""
    return [Sample(at=float(t), concurrency=load) for t in range(int(start), int(end) + 1)]


class Clock:
    """Runs `decide` every 2 s, like the shell's ticker, over a growing list of per-second samples."""

    def __init__(self, settings: AutoscalingSettings = SETTINGS, start: int | None = None) -> None:
        self.settings = settings
        self.now = 0.0
        self.samples: list[Sample] = []
        self.state = ScaleState() if start is None else ScaleState.start(start, 0.0)
        self.desired = 0 if start is None else start
        self.history: list[tuple[float, int]] = []

    def run(self, seconds: float, load: float) -> int:
        end = self.now + seconds
        while self.now < end:
            self.now += 1
            self.samples.append(Sample(self.now, load))
            if int(self.now) % 2 == 0:
                desired, self.state = decide(self.settings, self.samples, self.state, self.now)
                assert desired is not None
                self.desired = desired
                self.history.append((self.now, desired))
        return self.desired


def test_worked_number_three_in_flight_at_seventy_percent_wants_five() -> None:
    desired, _ = decide(SETTINGS, steady(3, 1, 60), ScaleState(), 60)
    assert desired == 5


def test_exact_multiples_do_not_round_up_by_float_noise() -> None:
    desired, _ = decide(SETTINGS, steady(1.4, 1, 60), ScaleState(), 60)  # 1.4 / 0.7 = 2
    assert desired == 2


def test_no_metrics_yet_is_a_result_and_leaves_the_state_alone() -> None:
    state = ScaleState.start(3, 0)
    assert decide(SETTINGS, [], state, 100) == (None, state)


def test_clamped_to_min_and_max() -> None:
    settings = AutoscalingSettings(min_replica=2, max_replica=4, autoscaling_window=60, scale_down_delay=0)
    assert decide(settings, steady(0, 1, 60), ScaleState(), 60)[0] == 2
    assert decide(settings, steady(100, 1, 60), ScaleState(), 60)[0] == 4


def test_average_only_counts_the_window() -> None:
    samples = steady(100, 1, 40) + steady(0, 41, 100)  # a burst long ago, quiet in the last 60 s
    assert average_concurrency(samples, 100, 60) == 0
    assert average_concurrency([], 100, 60) is None


def test_panic_window_is_a_tenth_of_stable_and_at_least_six_seconds() -> None:
    assert panic_window(AutoscalingSettings(autoscaling_window=60)) == 6
    assert panic_window(AutoscalingSettings(autoscaling_window=600)) == 60
    assert panic_window(AutoscalingSettings(autoscaling_window=3)) == 3


# A 2-second window, so that load changes show at the next tick and the delay alone is on test.
CRISP = AutoscalingSettings(max_replica=10, concurrency_target=1, target_utilization_percentage=70,
                            autoscaling_window=2, scale_down_delay=300)


def test_steps_up_stays_up_during_the_delay_then_comes_down_at_most_halving() -> None:
    clock = Clock(CRISP, start=1)
    assert clock.run(60, load=0.5) == 1
    assert clock.run(60, load=7) == 10  # ceil(7 / 0.7); load last justified 10 at t=120
    assert clock.run(60, load=0) == 10
    assert clock.run(238, load=0) == 10  # t=418: within 300 s of t=120
    # After the delay: 10 → 5 → 2 → 1 → 0, halving (at most) per decision.
    assert [clock.run(2, load=0) for _ in range(5)] == [5, 2, 1, 0, 0]


def test_a_burst_panics_at_once_and_does_not_wait_for_the_stable_window() -> None:
    clock = Clock(SETTINGS, start=1)
    clock.run(120, load=0.5)  # 1 replica, a minute of calm history
    # 6 s of 7 in flight: the stable average is only 0.7 + ... but the 6-s panic window sees 7.
    assert clock.run(6, load=7) == 10
    assert clock.state.panicking


def test_never_down_while_panicking_and_panic_ends_after_a_calm_stable_window() -> None:
    settings = AutoscalingSettings(max_replica=10, autoscaling_window=60, scale_down_delay=0)
    clock = Clock(settings, start=1)
    clock.run(60, load=0.5)
    clock.run(6, load=7)
    peak = clock.desired
    before_calm = clock.now
    while True:
        desired = clock.run(2, load=0.5)
        if not clock.state.panicking:
            break
        assert desired >= peak
    assert clock.now >= before_calm - 4 + 60  # a stable window after the threshold was last crossed (t=62)
    assert clock.run(120, load=0.5) == 1


def test_sawtooth_load_keeps_the_peak_through_the_delay() -> None:
    clock = Clock(CRISP, start=1)
    for _ in range(10):
        clock.run(10, load=3.5)  # 5 replicas
        assert clock.run(10, load=0) == 5


def test_silence_scales_to_zero_only_after_the_delay() -> None:
    clock = Clock(AutoscalingSettings(max_replica=4, autoscaling_window=10, scale_down_delay=60), start=1)
    assert clock.run(58, load=0) == 1
    assert clock.run(4, load=0) == 0


def test_min_replica_one_never_reaches_zero() -> None:
    clock = Clock(AutoscalingSettings(min_replica=1, max_replica=4, autoscaling_window=10, scale_down_delay=0),
                  start=1)
    assert clock.run(100, load=0) == 1


def test_a_poke_at_zero_wakes_one_replica_at_once() -> None:
    settings = AutoscalingSettings(max_replica=4, autoscaling_window=60, scale_down_delay=60)
    state = ScaleState(current=0)
    samples = steady(0, 1, 99) + [Sample(100, 1)]  # one request queued at zero
    assert decide(settings, samples, state, 100)[0] == 1


def test_scale_up_is_immediate_even_during_a_delay() -> None:
    clock = Clock(start=1)
    clock.run(60, load=2)  # 3 replicas
    clock.run(30, load=0)  # holding 3 during the delay
    assert clock.desired == 3
    assert clock.run(60, load=7) == 10


def test_a_new_burst_restarts_the_delay() -> None:
    clock = Clock(CRISP, start=1)
    clock.run(60, load=2.1)  # 3 replicas, justified at t=60
    clock.run(200, load=0)  # t=260
    clock.run(60, load=2.1)  # justified again at t=320
    assert clock.run(280, load=0) == 3  # t=600: 540 s after t=60, but only 280 after t=320
    assert clock.run(20, load=0) == 1  # t=620: the delay is over; 3 → 1 (at most halving)
    assert clock.run(2, load=0) == 0


def test_zero_delay_follows_load_down_at_the_scale_down_rate() -> None:
    clock = Clock(AutoscalingSettings(max_replica=10, autoscaling_window=10, scale_down_delay=0), start=1)
    assert clock.run(10, load=7) == 10
    assert clock.run(30, load=0) == 0


def test_state_stays_small() -> None:
    clock = Clock(start=1)
    for load in (0, 7, 6, 5, 4, 3, 2, 1, 0) * 20:
        clock.run(10, load=load)
    assert len(clock.state.recent) <= SETTINGS.max_replica + 1


def test_baseten_defaults_cap_at_one_replica() -> None:
    defaults = AutoscalingSettings()
    assert (defaults.min_replica, defaults.max_replica, defaults.concurrency_target,
            defaults.target_utilization_percentage, defaults.autoscaling_window,
            defaults.scale_down_delay) == (0, 1, 1, 70, 60, 900)
    assert decide(defaults, steady(50, 1, 60), ScaleState(), 60)[0] == 1


def test_idle_deactivation_only_at_zero_after_the_idle_period() -> None:
    two_weeks = 14 * 86400
    assert idle_to_deactivate(0, last_traffic=0, now=two_weeks, idle_seconds=two_weeks)
    assert not idle_to_deactivate(0, last_traffic=0, now=two_weeks - 1, idle_seconds=two_weeks)
    assert not idle_to_deactivate(1, last_traffic=0, now=3 * two_weeks, idle_seconds=two_weeks)
    assert not idle_to_deactivate(0, last_traffic=0, now=3 * two_weeks, idle_seconds=0)  # 0: never
