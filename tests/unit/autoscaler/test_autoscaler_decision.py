"""The scaling rule, stepped by hand: a fake clock is just the `now` each call is given."""

import pytest

from kingpost_autoscaler.decision import AutoscalingSettings, Sample, ScaleState, average_concurrency, decide

SETTINGS = AutoscalingSettings(min_replica=0, max_replica=10, concurrency_target=1,
                               target_utilization_percentage=70, autoscaling_window=60, scale_down_delay=300)


def steady(load: float, start: float, end: float) -> list[Sample]:
    """One sample per second in [start, end]."""
    return [Sample(at=float(t), concurrency=load) for t in range(int(start), int(end) + 1)]


class Clock:
    """Runs `decide` every 2 s, like the shell's ticker, over a growing list of per-second samples."""

    def __init__(self, settings: AutoscalingSettings = SETTINGS) -> None:
        self.settings = settings
        self.now = 0.0
        self.samples: list[Sample] = []
        self.state = ScaleState()
        self.desired = 0

    def run(self, seconds: float, load: float) -> int:
        end = self.now + seconds
        while self.now < end:
            self.now += 1
            self.samples.append(Sample(self.now, load))
            if int(self.now) % 2 == 0:
                self.desired, self.state = decide(self.settings, self.samples, self.state, self.now)
        return self.desired


def test_worked_number_three_in_flight_at_seventy_percent_wants_five() -> None:
    desired, _ = decide(SETTINGS, steady(3, 1, 60), ScaleState(), 60)
    assert desired == 5


def test_exact_multiples_do_not_round_up_by_float_noise() -> None:
    desired, _ = decide(SETTINGS, steady(1.4, 1, 60), ScaleState(), 60)  # 1.4 / 0.7 = 2
    assert desired == 2


def test_never_below_one_even_with_min_zero_and_no_load() -> None:
    assert decide(SETTINGS, [], ScaleState(), 100)[0] == 1
    assert decide(SETTINGS, steady(0, 1, 60), ScaleState(), 60)[0] == 1


def test_clamped_to_min_and_max() -> None:
    settings = AutoscalingSettings(min_replica=2, max_replica=4, autoscaling_window=60, scale_down_delay=0)
    assert decide(settings, steady(0, 1, 60), ScaleState(), 60)[0] == 2
    assert decide(settings, steady(100, 1, 60), ScaleState(), 60)[0] == 4


def test_average_only_counts_the_window() -> None:
    samples = steady(100, 1, 40) + steady(0, 41, 100)  # a burst long ago, quiet in the last 60 s
    assert average_concurrency(samples, 100, 60) == 0
    assert average_concurrency([], 100, 60) is None


# A 2-second window, so that load changes show at the next tick and the delay alone is on test.
CRISP = AutoscalingSettings(max_replica=10, concurrency_target=1, target_utilization_percentage=70,
                            autoscaling_window=2, scale_down_delay=300)


def test_steps_up_stays_up_during_the_delay_then_comes_down() -> None:
    clock = Clock(CRISP)
    assert clock.run(60, load=0) == 1
    assert clock.run(60, load=7) == 10  # ceil(7 / 0.7); load last justified 10 at t=120
    assert clock.run(60, load=0) == 10
    assert clock.run(238, load=0) == 10  # t=418: within 300 s of t=120
    assert clock.run(2, load=0) == 1  # t=420: the delay has passed


def test_scale_up_is_immediate_even_during_a_delay() -> None:
    clock = Clock()
    clock.run(60, load=2)  # 3 replicas
    clock.run(30, load=0)  # holding 3 during the delay
    assert clock.desired == 3
    assert clock.run(60, load=7) == 10


def test_a_new_burst_restarts_the_delay() -> None:
    clock = Clock(CRISP)
    clock.run(60, load=2.1)  # 3 replicas, justified at t=60
    clock.run(200, load=0)  # t=260
    clock.run(60, load=2.1)  # justified again at t=320
    assert clock.run(280, load=0) == 3  # t=600: 540 s after t=60, but only 280 after t=320
    assert clock.run(20, load=0) == 1  # t=620


def test_steps_down_one_level_at_a_time_as_each_count_ages_out() -> None:
    clock = Clock(CRISP)
    clock.run(10, load=7)  # 10 at t=10
    clock.run(10, load=3.5)  # 5 at t=20
    clock.run(10, load=0)
    assert clock.run(278, load=0) == 10  # t=308
    assert clock.run(2, load=0) == 5  # t=310: 10 (t=10) aged out, 5 (t=20) has not
    assert clock.run(10, load=0) == 1  # t=320


def test_zero_delay_follows_load_down_at_once() -> None:
    clock = Clock(AutoscalingSettings(max_replica=10, autoscaling_window=10, scale_down_delay=0))
    assert clock.run(10, load=7) == 10
    assert clock.run(10, load=0) == 1


def test_state_stays_small() -> None:
    clock = Clock()
    for load in (0, 7, 6, 5, 4, 3, 2, 1, 0) * 20:
        clock.run(10, load=load)
    assert len(clock.state.recent) <= SETTINGS.max_replica


def test_baseten_defaults_keep_one_replica() -> None:
    defaults = AutoscalingSettings()
    assert (defaults.min_replica, defaults.max_replica, defaults.concurrency_target,
            defaults.target_utilization_percentage, defaults.autoscaling_window,
            defaults.scale_down_delay) == (0, 1, 1, 70, 60, 900)
    assert decide(defaults, steady(50, 1, 60), ScaleState(), 60)[0] == 1


@pytest.mark.parametrize("kwargs, key", [
    ({"max_replica": 0}, "max_replica"),
    ({"concurrency_target": 0}, "concurrency_target"),
    ({"target_utilization_percentage": 0}, "target_utilization_percentage"),
    ({"autoscaling_window": 0}, "autoscaling_window"),
    ({"scale_down_delay": -1}, "scale_down_delay"),
])
def test_invalid_settings_name_the_key(kwargs: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        AutoscalingSettings(**kwargs)
