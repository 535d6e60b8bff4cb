"""Every pair of run states: which transitions are legal."""

import itertools

import pytest

from dockyard.core.states import TERMINAL, RunState, can_transition, parse_state
from dockyard.errors import UsageError

S = RunState
LEGAL = {
    (S.SCHEDULED, S.PENDING),
    (S.SCHEDULED, S.CANCELLED),
    (S.PENDING, S.RUNNING),
    (S.PENDING, S.CANCELLED),
    (S.PENDING, S.FAILED),
    (S.PENDING, S.CRASHED),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.RUNNING, S.CRASHED),
    (S.RUNNING, S.SCHEDULED),  # a retry waiting for its delay
}


@pytest.mark.parametrize(("current", "new"), list(itertools.product(RunState, RunState)))
def test_transition_table(current, new):
    assert can_transition(current, new) is ((current, new) in LEGAL)


def test_terminal_states_have_no_way_out():
    for state in TERMINAL:
        assert state.is_terminal
        assert not any(can_transition(state, other) for other in RunState)


@pytest.mark.parametrize("text", ["failed", "FAILED", " Failed "])
def test_parse_state_is_case_insensitive(text):
    assert parse_state(text) is RunState.FAILED


def test_parse_state_lists_valid_names():
    with pytest.raises(UsageError, match="Completed, Failed"):
        parse_state("done")
