"""The only I/O in the relay: move bytes between the client, the relay and the sandbox.

One selectors loop owns every pipe, the signals, the child's exit, the
watchdog tick and the shutdown stages; nothing outlives `Pump.run` but the
sandbox itself when the loop fails, which its owner (`spawn.Starting`, around
the pump) then kills, reaps and removes the cgroups of. It is a
plain epoll loop rather than anyio because importing asyncio alone costs
~45 ms here, most of mcpbox's start-up budget, and a message should cost one
wake-up, one read and one write: data is written straight through and only
what the peer cannot take yet is buffered, with reading paused (backpressure)
while a buffer is over its high-water mark.
"""

import errno
import fcntl
import itertools
import os
import selectors
import signal
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from mcpbox.errors import RelayError, said
from mcpbox.relay.interface import Decision, Output, Relay
from mcpbox.relay.lifecycle import Action, Event, Stage, step
from mcpbox.relay.stderr import StderrLines
from mcpbox.sandbox.spawn import Sandbox

if TYPE_CHECKING:
    from mcpbox.audit import AuditLog
    from mcpbox.relay.pins import PinStore

WATCHDOG_SECONDS = 0.5
HIGH_WATER = 4 * 1024 * 1024
PIPE_SIZE = 1024 * 1024  # asked of the pipes mcpbox reads and writes (Linux's default pipe-max-size)
READ_SIZE = 64 * 1024  # a read's size, as a pipe holds 64 KiB unless grown: more costs an mmap/munmap per read
LARGE_READ = PIPE_SIZE  # a read's size after one that filled READ_SIZE: a large message is arriving
WRITE_BATCH = 64  # queued buffers written by one writev
SPIN_SECONDS = 100e-6
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
START_SECONDS = 30.0  # default of [limits] start_seconds: a first request unanswered this long, it stalled
SETTLE_SECONDS = 1.0  # the server's stdout closed before it answered: how long its status and last lines are awaited
TAIL_LINES = 20  # of the server's stderr, kept (as shown) until it answers, for the diagnosis of a failed start


class Sink:
    """A non-blocking output that writes through and queues only what the peer cannot take yet: views of
    the bytes it was given, not a copy, so a large message the client reads slowly is held once."""

    def __init__(self, fd: int, name: str, on_broken: Callable[[], None] | None = None) -> None:
        self.fd = fd
        self.name = name  # for the one line when writing fails
        self.queue: deque[memoryview] = deque()
        self.pending = 0  # bytes queued
        self.closed = False
        self.watched = False  # registered for EVENT_WRITE
        self.close_when_drained = False
        self._on_broken = on_broken

    def send(self, chunks: list[bytes]) -> None:
        """`chunks` in one writev (a message and its newline may come apart at no cost); what the peer
        does not take is queued."""
        if self.closed or not chunks:
            return
        written = 0 if self.queue else self._write(chunks[:WRITE_BATCH])
        if self.closed:
            return
        for chunk in chunks:
            if written >= len(chunk):
                written -= len(chunk)
                continue
            view = memoryview(chunk if isinstance(chunk, bytes) else bytes(chunk))[written:]  # a bytearray may change
            written = 0
            self.queue.append(view)
            self.pending += len(view)

    def flush(self) -> None:
        if self.queue and not self.closed:
            self._drop(self._write(list(itertools.islice(self.queue, WRITE_BATCH))))
        if not self.pending and self.close_when_drained:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._forget()
            os.close(self.fd)

    def _drop(self, written: int) -> None:
        """The queue without its first `written` bytes (none left when writing found the reader gone)."""
        if self.closed:
            return
        self.pending -= written
        while written:
            head = self.queue[0]
            if written < len(head):
                self.queue[0] = head[written:]
                return
            written -= len(head)
            self.queue.popleft()

    def _forget(self) -> None:
        self.queue.clear()
        self.pending = 0

    def _write(self, views: list[Any]) -> int:
        try:
            return os.writev(self.fd, views)
        except BlockingIOError:
            return 0
        except OSError as error:
            if error.errno not in (errno.EPIPE, errno.EBADF, errno.ECONNRESET):  # not the reader going away
                raise RelayError(f"cannot write to {self.name}: {error.strerror}; the server was stopped") from None
            self.closed = True
            self._forget()
            if self._on_broken is not None:
                self._on_broken()
            return sum(map(len, views))


class Stop(NamedTuple):
    """Why the loop ended early, for the one line mcpbox writes about it."""

    reason: str
    status: int


class Pump:
    def __init__(self, sandbox: Sandbox, relay: Relay, check_limits: Callable[[], str | None],
                 stderr_prefix: bytes, client_in: int = 0, client_out: int = 1,
                 explain: Callable[[list[str], int | None, float | None], Any] | None = None,
                 start_seconds: float = START_SECONDS, audit: "AuditLog | None" = None,
                 pins: "PinStore | None" = None, observe: Callable[[Decision], None] | None = None) -> None:
        self.sandbox = sandbox
        self.observe = observe  # `mcpbox learn`: every decision, as it is logged
        self.audit = audit  # the relay's decisions are written here after what they decided on was sent
        self.pins = pins  # saved when an output says they changed, after it was sent
        self.decided: list[Decision] = []
        self.pins_changed = False
        self.start_seconds = start_seconds
        self.relay = relay
        self.check_limits = check_limits
        self.stderr_lines = StderrLines(stderr_prefix, relay.shown)
        self.relay_notes = StderrLines(b"", relay.shown)  # the relay's own lines, under a budget of their own
        # Until the server answers a request: its last stderr lines, and what says why it ended or stalled
        # (`explain(lines, status, stalled_after)` -> a diagnosis with .lines() and .message()).
        self.tail: deque[bytes] | None = deque(maxlen=TAIL_LINES)
        self.stderr_lines.tail = self.tail
        self.explain = explain
        self.start_deadline: float | None = None  # a client request waits on a server that answered none yet
        self.gone_by: float | None = None  # stdout closed before any answer: report by then at the latest
        process = sandbox.process
        assert process.stdin and process.stdout and process.stderr
        self.client_in = client_in
        self.server_out = process.stdout.fileno()
        self.server_err = process.stderr.fileno()
        self.to_server = Sink(process.stdin.fileno(), "the server's stdin")
        self.to_client = Sink(client_out, "the client (stdout)", self._client_gone)
        self.selector = selectors.DefaultSelector()
        self.status: int | None = None
        self.stop: Stop | None = None
        self.stage = Stage.RUNNING
        self.deadline: float | None = None
        self.open_sources = {self.client_in, self.server_out, self.server_err}
        self.paused: set[int] = set()
        self.always_ready: set[int] = set()  # a regular file or /dev/null as stdin: epoll refuses those
        self.read_sizes: dict[int, int] = {}  # fd -> its next read's size, when not READ_SIZE

    # -- setup and teardown -------------------------------------------------

    def run(self) -> int:
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        previous_wakeup = signal.set_wakeup_fd(wake_write)
        handlers = {sig: signal.signal(sig, _note) for sig in (signal.SIGCHLD, *STOP_SIGNALS)}
        saved_flags = {fd: _set_nonblocking(fd) for fd in (self.client_in, self.to_client.fd)}
        for fd in (self.server_out, self.server_err, self.to_server.fd):
            _set_nonblocking(fd)
        for fd in (self.server_out, self.to_client.fd):  # large results go this way; requests are small
            _grow_pipe(fd)
        try:
            self.selector.register(wake_read, selectors.EVENT_READ)
            for fd in self.open_sources:
                self._watch(fd)
            self._reap()
            self._loop(wake_read)
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            for fd, flags in saved_flags.items():
                try:
                    fcntl.fcntl(fd, fcntl.F_SETFL, flags)
                except OSError:
                    pass
            self.selector.close()
            os.close(wake_read)
            os.close(wake_write)
            self._record()  # whatever was decided last
        assert self.status is not None
        return self.stop.status if self.stop else self.status

    def _loop(self, wake_read: int) -> None:
        next_check = time.monotonic() + WATCHDOG_SECONDS
        select = self._select
        while not self._finished():
            self._update_interest()
            ready = self.always_ready - self.paused if self.always_ready else None
            if ready:
                timeout = 0.0
            else:
                until = next_check if self.deadline is None else min(next_check, self.deadline)
                timeout = max(0.0, until - time.monotonic())
            for key, mask in select(timeout):
                fd = key.fd
                if fd == wake_read:
                    self._signals(wake_read)
                    continue
                if mask & selectors.EVENT_WRITE:
                    (self.to_server if fd == self.to_server.fd else self.to_client).flush()
                if mask & selectors.EVENT_READ:
                    self._read(fd)
            for fd in ready or ():
                self._read(fd)
            now = time.monotonic()
            if self.gone_by is not None and (now >= self.gone_by or (
                    self.status is not None and self.server_err not in self.open_sources)):
                self._failed_start(None)
            if now >= next_check:
                next_check = now + WATCHDOG_SECONDS
                if self.status is None:
                    reason = self.check_limits()
                    if reason:
                        self._kill(Stop(reason, 128 + signal.SIGKILL))
                if self.start_deadline is not None and now >= self.start_deadline and self.stage is Stage.RUNNING:
                    self._failed_start(self.start_seconds)
                    self._on(Event.STOP)
            if self.deadline is not None and now >= self.deadline:
                self._on(Event.DEADLINE)

    def _select(self, timeout: float) -> list[tuple[selectors.SelectorKey, int]]:
        """Poll for SPIN_SECONDS before sleeping: a reply that comes back within them (a quick server
        answering a request just forwarded) then costs no wake-up of mcpbox, ~20-40 µs a hop on small VMs.
        Idle, that is 0.1 ms of CPU per watchdog tick."""
        if timeout > 0:
            end = time.perf_counter() + SPIN_SECONDS
            while time.perf_counter() < end:
                events = self.selector.select(0)
                if events:
                    return events
        return self.selector.select(timeout)

    def _finished(self) -> bool:
        if self.status is None or self.gone_by is not None or not self._sandbox_init_gone():
            return False
        if self.server_out in self.open_sources or self.server_err in self.open_sources:
            return False
        if self.to_client.pending and not self.to_client.closed:
            self._on(Event.BACKLOG)
            return False
        return True

    def _sandbox_init_gone(self) -> bool:
        """Whether the sandbox's PID 1 is reaped; once bwrap is, ends it if it is not.

        bwrap exits as soon as the server has, without waiting for its init,
        which waits for whatever the server left behind (a daemon). As a
        subreaper mcpbox inherits the init: killing it makes the kernel kill
        the rest of the PID namespace, and reaping it means nothing of the
        sandbox outlives mcpbox and its cgroups are empty when removed.
        """
        try:
            pid, _ = os.waitpid(self.sandbox.init_pid, os.WNOHANG)
        except ChildProcessError:
            return True  # reaped by bwrap, or by _reap
        if pid == 0:
            os.kill(self.sandbox.init_pid, signal.SIGKILL)  # an unreaped child of ours: its pid is not reused
        return pid != 0

    def _update_interest(self) -> None:
        """Watch outputs with a backlog; pause inputs whose destination is over its high-water mark."""
        if not (self.to_server.pending or self.to_client.pending or self.paused
                or self.to_server.watched or self.to_client.watched):
            return  # the usual case: everything went straight through
        for sink in (self.to_server, self.to_client):
            wants_write = bool(sink.pending) and not sink.closed
            if wants_write != sink.watched:
                if wants_write:
                    self.selector.register(sink.fd, selectors.EVENT_WRITE)
                else:
                    self.selector.unregister(sink.fd)
                sink.watched = wants_write
        for source, sink in ((self.client_in, self.to_server), (self.server_out, self.to_client)):
            if source not in self.open_sources:
                continue
            full = sink.pending > HIGH_WATER
            if full and source not in self.paused:
                if source not in self.always_ready:
                    self.selector.unregister(source)
                self.paused.add(source)
            elif not full and source in self.paused:
                self.paused.discard(source)
                self._watch(source)

    # -- data ---------------------------------------------------------------

    def _read(self, fd: int) -> None:
        size = self.read_sizes.get(fd, READ_SIZE)
        try:
            data = os.read(fd, size)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if len(data) >= READ_SIZE:
            self.read_sizes[fd] = LARGE_READ
        else:
            self.read_sizes.pop(fd, None)
        if fd == self.server_err:
            self._say_raw(self.stderr_lines.feed(data) if data else self.stderr_lines.close())
        elif fd == self.server_out:
            if data:
                self._deliver(self.relay.from_server(data))
                if self.tail is not None and self.relay.answered:
                    self._started()
            elif self.tail is not None and self.stop is None and (self.stage is Stage.RUNNING or self.relay.awaiting()):
                self.gone_by = time.monotonic() + SETTLE_SECONDS  # answered once its status and stderr are in
            else:
                self._deliver(self.relay.server_gone())
        elif data:
            self._deliver(self.relay.from_client(data))
            if self.start_deadline is None and self.tail is not None and self.relay.awaiting():
                self.start_deadline = time.monotonic() + self.start_seconds
        if fd != self.server_err:
            self._record()
        if not data:
            self._close_source(fd)
            if fd == self.client_in:
                self._on(Event.STOP)

    def _deliver(self, output: Output) -> None:
        self.to_server.send(output.to_server)
        self.to_client.send(output.to_client)
        for note in output.notes:
            self._say_raw(self.relay_notes.feed(note))
        self.decided += output.decisions
        self.pins_changed |= output.pins_changed

    def _record(self) -> None:
        """After a read's outputs went: their audit lines in one write, and the pins saved if they changed."""
        if self.decided:
            for decision in self.decided:
                if self.audit is not None:
                    self.audit.write(**self.relay.audit_fields(decision))
                if self.observe is not None:
                    self.observe(decision)
            if self.audit is not None:
                self.audit.flush()
            self.decided.clear()
        if self.pins_changed and self.pins is not None:
            self.pins.save()
        self.pins_changed = False

    def _watch(self, fd: int) -> None:
        if fd in self.always_ready:
            return
        try:
            self.selector.register(fd, selectors.EVENT_READ)
        except PermissionError:
            self.always_ready.add(fd)

    def _close_source(self, fd: int) -> None:
        if fd in self.open_sources:
            self.open_sources.discard(fd)
            if fd not in self.paused and fd not in self.always_ready:
                self.selector.unregister(fd)
            self.paused.discard(fd)
            self.always_ready.discard(fd)
            if fd != self.client_in:
                os.close(fd)

    def _started(self) -> None:
        self.tail = self.stderr_lines.tail = None
        self.start_deadline = None

    def _failed_start(self, stalled_after: float | None) -> None:
        """The server ended (its stdout closed) or stalled before answering any request: mcpbox says on stderr
        what it saw, and the client's pending requests (and any later ones) get the same as their error."""
        tail = [line.decode(errors="replace") for line in self.tail or ()]
        status = self.status
        self._started()
        self.gone_by = None
        diagnosis = None
        if self.explain is not None and (stalled_after is not None or self.relay.awaiting()
                                         or (status != 0 and self.stage is Stage.RUNNING)):
            try:
                diagnosis = self.explain(tail, status, stalled_after)
            except Exception as error:  # a diagnosis must never cost the client its answer
                self._say_raw(self.relay_notes.feed(said(f"no diagnosis ({type(error).__name__}: {error})")))
        if diagnosis is not None:
            for line in diagnosis.lines():
                self._say_raw(self.relay_notes.feed(said(line)))
        self._deliver(self.relay.server_gone(diagnosis.message() if diagnosis is not None else None))
        self._record()

    def _say_raw(self, text: bytes) -> None:
        if text:
            try:
                os.write(2, text)
            except OSError:
                pass

    # -- lifecycle ----------------------------------------------------------

    def _signals(self, wake_read: int) -> None:
        try:
            received = os.read(wake_read, 512)
        except BlockingIOError:
            return
        for number in received:
            if number == signal.SIGCHLD:
                self._reap()
            elif number in STOP_SIGNALS:
                self._on(Event.HURRY)

    def _reap(self) -> None:
        """Reap every child: bwrap, and anything orphaned onto mcpbox as subreaper."""
        while True:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.sandbox.process.pid:
                code = os.waitstatus_to_exitcode(wait_status)
                self.status = code if code >= 0 else 128 - code
                self.sandbox.process.returncode = self.status
                self._on(Event.EXITED)
                self.to_server.close()

    def _on(self, event: Event) -> None:
        """The lifecycle table's step for `event`: the new stage, its deadline, and what to do."""
        taken = step(self.stage, event, self.status is not None)
        if taken is None:
            return
        self.stage = taken.stage
        self.deadline = None if taken.deadline is None else time.monotonic() + taken.deadline
        for action in taken.actions:
            if action is Action.CLOSE_STDIN:
                self.to_server.close_when_drained = True
                self.to_server.flush()
            elif action is Action.TERMINATE:
                self.to_server.close()
                server = _first_child(self.sandbox.init_pid)
                if server is not None:
                    _signal_group(server, signal.SIGTERM)
            elif action is Action.KILL:  # the kernel then kills everything in the sandbox's PID namespace
                for pid in (self.sandbox.init_pid, self.sandbox.process.pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            elif action is Action.CLOSE_CLIENT:
                self.to_client.close()

    def _kill(self, stop: Stop) -> None:
        """The watchdog's stop: said once, then the sandbox is killed."""
        if self.stop is None:
            self.stop = stop
            self._say_raw(said(f"{stop.reason}; the server was stopped"))
        self._on(Event.LIMIT)

    def _client_gone(self) -> None:
        self._close_source(self.client_in)
        self._on(Event.STOP)


def _note(signum: int, frame: object) -> None:
    """Signals only wake the loop (through the wakeup fd); the loop acts on them."""


def _set_nonblocking(fd: int) -> int:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    return flags


def _grow_pipe(fd: int) -> None:
    """A pipe of PIPE_SIZE, so a large message crosses in 16 times fewer reads, writes and wake-ups. Not a
    pipe, or over the system's pipe-max-size or the user's pipe-user-pages limits: it stays as it is. Only
    two per session: a user's pipes count against pipe-user-pages-soft (64 MiB), past which the kernel
    gives that user's new pipes two pages."""
    try:
        if fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) < PIPE_SIZE:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass


def _first_child(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            children = handle.read().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def _signal_group(pid: int, sig: int) -> None:
    """The server leads its own session (bwrap --new-session), so its group is its pid."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
