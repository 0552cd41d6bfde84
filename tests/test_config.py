"""Config: one object for flags, environment variables and run() arguments."""

from __future__ import annotations

import pytest

from graceful._config import Config
from graceful._errors import UsageError


def test_defaults() -> None:
    config = Config.from_sources({}, {})
    assert (config.grace, config.loop, config.log_level, config.init) == (
        10.0,
        "auto",
        "INFO",
        "auto",
    )


def test_flags_win_over_env_and_env_over_defaults() -> None:
    env = {"GRACEFUL_GRACE": "4", "GRACEFUL_LOOP": "asyncio", "GRACEFUL_LOG_LEVEL": "debug"}
    config = Config.from_sources({"grace": "2.5"}, env)
    assert (config.grace, config.loop, config.log_level) == (2.5, "asyncio", "DEBUG")


def test_empty_env_var_means_unset() -> None:
    assert Config.from_sources({}, {"GRACEFUL_GRACE": ""}).grace == 10.0


@pytest.mark.parametrize("bad", ["0", "-3", "0.001", "0.49", "inf", "1e10", "-inf"])
def test_grace_must_be_in_the_range_the_sequence_and_timers_can_honour(bad: str) -> None:
    with pytest.raises(UsageError, match=r"--grace must be between 0.5 and 604800 seconds, got"):
        Config.from_sources({"grace": bad}, {})


@pytest.mark.parametrize("bad", ["nan", "ten", "", " "])
def test_grace_must_be_a_number(bad: str) -> None:
    with pytest.raises(UsageError, match="--grace must be a number of seconds, got .* --grace 10"):
        Config.from_sources({"grace": bad}, {})


def test_grace_bounds_are_accepted() -> None:
    assert Config(grace=0.5).grace == 0.5
    assert Config.from_sources({}, {"GRACEFUL_GRACE": "604800"}).grace == 604800.0


@pytest.mark.parametrize("bad", [True, None, [1], "1s"])
def test_run_keywords_of_the_wrong_type_are_refused(bad: object) -> None:
    with pytest.raises(UsageError, match="grace must be a number of seconds, got"):
        Config(grace=bad)  # type: ignore[arg-type]


def test_new_options_from_flags_and_env() -> None:
    env = {
        "GRACEFUL_DRAIN_DELAY": "2",
        "GRACEFUL_HEALTH_PORT": "8081",
        "GRACEFUL_HEALTH_HOST": "127.0.0.1",
        "GRACEFUL_READINESS": "MANUAL",
        "GRACEFUL_LIVENESS_MAX_LAG": "1.5",
        "GRACEFUL_TASK_ERRORS": "shutdown",
    }
    config = Config.from_sources({"health_port": "0"}, env)
    assert config.drain_delay == 2.0
    assert config.health_port == 0
    assert config.health_host == "127.0.0.1"
    assert config.readiness == "manual"
    assert config.liveness_max_lag == 1.5
    assert config.task_errors == "shutdown"
    assert Config().health_port is None  # off by default


@pytest.mark.parametrize("bad", ["-1", "65536", "http", "80.5", ""])
def test_health_port_must_be_a_port(bad: str) -> None:
    with pytest.raises(UsageError, match="--health-port must be a port number from 1 to 65535"):
        Config.from_sources({"health_port": bad}, {})


@pytest.mark.parametrize("bad", ["-1", "nan", "inf"])
def test_drain_delay_must_be_a_duration(bad: str) -> None:
    with pytest.raises(UsageError, match="GRACEFUL_DRAIN_DELAY must be"):
        Config.from_sources({}, {"GRACEFUL_DRAIN_DELAY": bad})


def test_a_drain_delay_over_half_the_grace_is_refused_with_the_numbers() -> None:
    with pytest.raises(
        UsageError,
        match=r"--drain-delay 6 s leaves less than half of GRACEFUL_GRACE 10 s .* at most 5 s",
    ):
        Config.from_sources({"drain_delay": "6"}, {"GRACEFUL_GRACE": "10"})
    assert Config(grace=10, drain_delay=5).drain_delay == 5.0


def test_error_names_the_source_the_user_wrote() -> None:
    with pytest.raises(UsageError, match="GRACEFUL_LOOP must be one of .* GRACEFUL_LOOP=auto"):
        Config.from_sources({}, {"GRACEFUL_LOOP": "fast"})
    with pytest.raises(UsageError, match="loop must be one of .* loop='auto'"):
        Config(loop="fast")


def test_workers_from_flag_or_env_and_their_grace() -> None:
    from graceful._supervise.workers import worker_argv, worker_grace

    assert Config.from_sources({}, {}).workers == 0
    assert Config.from_sources({}, {"GRACEFUL_WORKERS": "3"}).workers == 3
    config = Config.from_sources({"workers": "2", "grace": "10"}, {"GRACEFUL_WORKERS": "5"})
    assert config.workers == 2
    # A worker's whole sequence ends before the parent's own deadline and SIGKILL reserve.
    assert worker_grace(config) == 9.4
    argv = worker_argv(config, "app:main", ["--port", "80"])
    assert argv[-3:] == ["app:main", "--port", "80"]
    assert argv[argv.index("--workers") + 1] == "0" and "--init" in argv
