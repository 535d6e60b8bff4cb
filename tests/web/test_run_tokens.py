"""The tokens a serve process gives its flow runs: one per active attempt, never shown."""

from __future__ import annotations

from dockyard.web.auth import RUN_TOKEN_PREFIX, RunTokens


def test_run_tokens_belong_to_one_run_until_revoked() -> None:
    tokens = RunTokens()
    first, second = tokens.issue("run-1"), tokens.issue("run-2")

    assert first.startswith(RUN_TOKEN_PREFIX) and first != second
    assert (tokens.holder(first), tokens.holder(second)) == ("run-1", "run-2")
    assert tokens.holder(first + "x") is None and tokens.holder("") is None
    retried = tokens.issue("run-1")  # the next attempt's token replaces the last one's
    assert tokens.holder(first) is None and tokens.holder(retried) == "run-1"
    tokens.revoke("run-1")
    assert tokens.holder(retried) is None and tokens.holder(second) == "run-2"
    assert first not in repr(tokens) and second not in repr(tokens)
