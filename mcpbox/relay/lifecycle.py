"""The pump's life as a table: what each event does in each stage. Pure: no process, no clock.

A session runs until the server ends; when the client goes (or a stop signal comes) shutdown moves one stage
at a time, each with its own deadline: the server's stdin is closed once what it was sent is written
(closing), then it gets SIGTERM (terminating), then the sandbox is killed. A stop signal moves one stage on
at once, so a client that closed stdin and then sends SIGTERM, as MCP clients do, gets its SIGTERM to the
server. Once the server has ended, what the client still has to read is flushed for a while (draining).
"""

from enum import Enum
from typing import NamedTuple

GRACE_SECONDS = 2.0  # after closing the server's stdin, and again after SIGTERM
DRAIN_SECONDS = 5.0  # how long to keep flushing to a client that stopped reading, at the end


class Stage(Enum):
    RUNNING = "running"
    CLOSING = "closing"  # the server's stdin closes once drained; it may exit by itself
    TERMINATING = "terminating"  # SIGTERM sent
    KILLED = "killed"
    DRAINING = "draining"  # the server ended; the client's backlog is being written


class Event(Enum):
    STOP = "stop"  # the client closed its stdin, or the start failed: end gracefully
    HURRY = "hurry"  # a stop signal to mcpbox
    DEADLINE = "deadline"  # the stage's time is up
    EXITED = "exited"  # the server's exit status is in
    BACKLOG = "backlog"  # the server ended, and the client has output it has not read
    LIMIT = "limit"  # the watchdog stopped the server


class Action(Enum):
    CLOSE_STDIN = "close the server's stdin once drained"
    TERMINATE = "close the server's stdin now and SIGTERM its process group"
    KILL = "SIGKILL the sandbox's init and bwrap"
    CLOSE_CLIENT = "stop writing to the client"


class Step(NamedTuple):
    stage: Stage
    actions: tuple[Action, ...] = ()
    deadline: float | None = None  # seconds from now; None: no deadline


def step(stage: Stage, event: Event, exited: bool) -> Step | None:
    """What `event` does in `stage` (`exited`: the server's status is in); None when it changes nothing."""
    if event is Event.HURRY:
        if exited:
            return None
        event = Event.STOP if stage is Stage.RUNNING else Event.DEADLINE
    if event is Event.STOP:
        return Step(Stage.CLOSING, (Action.CLOSE_STDIN,), GRACE_SECONDS) if stage is Stage.RUNNING and not exited \
            else None
    if event is Event.DEADLINE:
        if exited or stage is Stage.DRAINING:
            return Step(stage, (Action.CLOSE_CLIENT,))
        if stage is Stage.CLOSING:
            return Step(Stage.TERMINATING, (Action.TERMINATE,), GRACE_SECONDS)
        return Step(Stage.KILLED, (Action.KILL,))
    if event is Event.LIMIT:
        return Step(Stage.KILLED, (Action.KILL,))
    if event is Event.EXITED:
        return Step(stage)
    if event is Event.BACKLOG:
        return Step(Stage.DRAINING, (), DRAIN_SECONDS) if stage is not Stage.DRAINING else None
    raise ValueError(event)
