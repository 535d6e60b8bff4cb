"""Repeated warnings are logged once, then summarised periodically."""

import logging

from dockyard.service.throttle import WarningThrottle


def test_first_warning_logged_then_summarised_after_the_period(caplog):
    throttle = WarningThrottle(logging.getLogger("dockyard.test"), every=60)
    with caplog.at_level(logging.WARNING, logger="dockyard.test"):
        assert throttle.warn("k", "run still running", now=0.0)
        for t in range(1, 59):  # once per tick for a minute: silent
            assert not throttle.warn("k", "run still running", now=float(t))
        assert throttle.warn("k", "run still running", now=61.0)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "run still running",
        "run still running (and 58 more like it in the last 60s)",
    ]


def test_keys_are_independent_and_clear_resets():
    throttle = WarningThrottle(logging.getLogger("dockyard.test"), every=60)
    assert throttle.warn("a", "x", now=0.0)
    assert throttle.warn("b", "y", now=1.0)
    assert not throttle.warn("a", "x", now=2.0)
    throttle.clear("a")
    assert throttle.warn("a", "x", now=3.0)
