"""The pump's lifecycle as a table, without a process: each event in each stage."""

from __future__ import annotations

import pytest

from mcpbox.relay.lifecycle import DRAIN_SECONDS, GRACE_SECONDS, Action, Event, Stage, Step, step


def test_a_graceful_end_closes_stdin_then_terminates_then_kills() -> None:
    closing = step(Stage.RUNNING, Event.STOP, exited=False)
    assert closing == Step(Stage.CLOSING, (Action.CLOSE_STDIN,), GRACE_SECONDS)
    terminating = step(Stage.CLOSING, Event.DEADLINE, exited=False)
    assert terminating == Step(Stage.TERMINATING, (Action.TERMINATE,), GRACE_SECONDS)
    assert step(Stage.TERMINATING, Event.DEADLINE, exited=False) == Step(Stage.KILLED, (Action.KILL,))


def test_each_stop_signal_moves_one_stage_on_at_once() -> None:
    assert step(Stage.RUNNING, Event.HURRY, exited=False).stage is Stage.CLOSING
    assert step(Stage.CLOSING, Event.HURRY, exited=False).actions == (Action.TERMINATE,), "SIGTERM, not SIGKILL"
    assert step(Stage.TERMINATING, Event.HURRY, exited=False).actions == (Action.KILL,)
    assert step(Stage.CLOSING, Event.HURRY, exited=True) is None, "an ended server needs no hurry"


@pytest.mark.parametrize("stage", list(Stage))
def test_once_the_server_ended_a_deadline_only_stops_writing_to_the_client(stage: Stage) -> None:
    assert step(stage, Event.DEADLINE, exited=True) == Step(stage, (Action.CLOSE_CLIENT,))
    assert step(stage, Event.EXITED, exited=True) == Step(stage), "its exit clears the stage's deadline"


def test_stop_is_only_taken_while_running_and_the_backlog_drains_once() -> None:
    for stage in (Stage.CLOSING, Stage.TERMINATING, Stage.KILLED, Stage.DRAINING):
        assert step(stage, Event.STOP, exited=False) is None
    assert step(Stage.RUNNING, Event.STOP, exited=True) is None
    assert step(Stage.RUNNING, Event.BACKLOG, exited=True) == Step(Stage.DRAINING, (), DRAIN_SECONDS)
    assert step(Stage.DRAINING, Event.BACKLOG, exited=True) is None, "the drain deadline is set once"
    assert step(Stage.DRAINING, Event.DEADLINE, exited=False).actions == (Action.CLOSE_CLIENT,)


def test_a_crossed_limit_kills_from_any_stage() -> None:
    for stage in Stage:
        assert step(stage, Event.LIMIT, exited=False) == Step(Stage.KILLED, (Action.KILL,))
