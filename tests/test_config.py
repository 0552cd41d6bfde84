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


@pytest.mark.parametrize("bad", ["0", "-3", "nan", "inf", "ten", ""])
def test_grace_must_be_positive_and_finite(bad: str) -> None:
    with pytest.raises(UsageError, match="--grace must be a number of seconds greater than 0"):
        Config.from_sources({"grace": bad}, {})


def test_error_names_the_source_the_user_wrote() -> None:
    with pytest.raises(UsageError, match="GRACEFUL_LOOP must be one of .* GRACEFUL_LOOP=auto"):
        Config.from_sources({}, {"GRACEFUL_LOOP": "fast"})
    with pytest.raises(UsageError, match="loop must be one of .* loop='auto'"):
        Config(loop="fast")
