"""Settings from the environment (numbers, the ingest mode): defaults, values, and a clear error for garbage."""

from __future__ import annotations

import pytest

from mailer.config import load_settings
from mailer.errors import ConfigError


def _settings(**env: str):
    return load_settings({"MAILER_ENV": "test", "MAILER_INSTANCE_DIR": "/tmp/mailer-config-test", **env})


def test_dispatch_cap_defaults_and_reads_the_environment() -> None:
    assert _settings().dispatch_max_batches == 20
    assert _settings(MAILER_DISPATCH_MAX_BATCHES="").dispatch_max_batches == 20
    assert _settings(MAILER_DISPATCH_MAX_BATCHES="64").dispatch_max_batches == 64


@pytest.mark.parametrize("raw", ["0", "-3", "2.5", "lots"])
def test_dispatch_cap_refuses_what_is_not_a_whole_number_of_at_least_one(raw: str) -> None:
    with pytest.raises(ConfigError, match="MAILER_DISPATCH_MAX_BATCHES"):
        _settings(MAILER_DISPATCH_MAX_BATCHES=raw)


@pytest.mark.parametrize(("name", "field"), [("MAILER_SEND_BATCH_SIZE", "send_batch_size"),
                                             ("MAILER_TICK_INTERVAL", "tick_interval_seconds")])
def test_other_numbers_refuse_garbage_and_read_values(name: str, field: str) -> None:
    assert getattr(_settings(**{name: "7"}), field) == 7
    with pytest.raises(ConfigError, match=name):
        _settings(**{name: "soon"})


def test_the_ingest_mode_is_inline_unless_queued_is_asked_for() -> None:
    assert (_settings().ingest_mode, _settings().queues_tracking) == ("inline", False)
    assert _settings(MAILER_INGEST_MODE="").ingest_mode == "inline"
    assert _settings(MAILER_INGEST_MODE="queued").queues_tracking is True
    with pytest.raises(ConfigError, match="MAILER_INGEST_MODE must be one of inline, queued; got 'later'"):
        _settings(MAILER_INGEST_MODE="later")
