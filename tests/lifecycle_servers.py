"""Small fake stdio servers for tests/test_lifecycle.py: each misbehaves in one deliberate way.

Why fake: the lifecycle tests need servers that ignore SIGTERM and stdin EOF,
fork a daemon and exit, or die with a chosen status or signal, and they need
them on cue. Real MCP servers do none of that on purpose, so they cannot show
that mcpbox cleans up after the ones that do.

Usage: lifecycle_servers.py MODE [ARG]. The servers speak in words, each sent
as one JSON-RPC notification line (`word()`), since mcpbox relays JSON-RPC
only. Every mode says "ready" once it is set up (signal dispositions in
place, daemon running), so a test knows every process of the sandbox exists
before it looks for them. Lines read from stdin are echoed back, except the
word "exit", which makes the modes that take it end the way their name says;
stdin EOF is announced with "eof", so a test can tell that mcpbox closed the
server's stdin.

  eof STATUS      exit STATUS at stdin EOF (a well-behaved server)
  exit STATUS     exit STATUS when told "exit", without waiting for EOF
  signal NUMBER   kill itself with signal NUMBER when told "exit"
  sigterm-only    keep running after stdin EOF; the default SIGTERM action ends it
  stubborn        ignore SIGTERM, SIGINT, SIGHUP and stdin EOF: only SIGKILL ends it
  quiet           stubborn, and without the "ready": its first word is the echo of the
                  client's, for a client whose stdout fails at mcpbox's first write
  chatter STATUS  say "tick" every 10 ms, without being asked, and exit STATUS at stdin
                  EOF: mcpbox keeps writing to a client that may have gone
  daemon [keep]   fork a daemon (double fork + setsid, ignores SIGTERM and SIGHUP,
                  sleeps forever), then exit 0 when told "exit"; with "keep" the
                  daemon keeps the inherited stdin/stdout/stderr open instead of
                  detaching them
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time


def word(text: str) -> bytes:
    """A word as one JSON-RPC notification line, the only thing mcpbox relays."""
    body = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": text}}
    return json.dumps(body).encode() + b"\n"


def sleep_forever() -> None:
    while True:
        time.sleep(3600)


def say(data: bytes) -> None:
    """Write to stdout; a reader that is gone must not end the server (Python ignores SIGPIPE)."""
    try:
        os.write(1, data)
    except OSError:
        pass


def lines():
    """stdin lines, unbuffered, until EOF."""
    pending = b""
    while True:
        chunk = os.read(0, 65536)
        if not chunk:
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield line + b"\n"


def echo_until_exit() -> bool:
    """Echo lines; True if told "exit", False at EOF (announced with the word "eof")."""
    for line in lines():
        if line == word("exit"):
            return True
        say(line)
    say(word("eof"))
    return False


def start_daemon(keep_stdio: bool) -> None:
    ready_read, ready_write = os.pipe()
    first = os.fork()
    if first == 0:
        os.close(ready_read)
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        if not keep_stdio:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
        os.write(ready_write, b"x")
        os.close(ready_write)
        sleep_forever()
    os.close(ready_write)
    os.waitpid(first, 0)  # the intermediate child: the daemon is now orphaned, as daemons are
    if os.read(ready_read, 1) != b"x":
        raise SystemExit("the daemon did not start")
    os.close(ready_read)


def chatter() -> None:
    while True:
        say(word("tick"))
        time.sleep(0.01)


def main() -> None:
    mode, *rest = sys.argv[1:]
    argument = rest[0] if rest else ""
    if mode in ("stubborn", "quiet"):
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
    if mode == "daemon":
        start_daemon(keep_stdio=argument == "keep")
    if mode != "quiet":
        say(word("ready"))
    if mode == "chatter":
        threading.Thread(target=chatter, daemon=True).start()
    told = echo_until_exit()
    if mode in ("eof", "chatter") and not told:
        sys.exit(int(argument))
    if mode == "exit" and told:
        sys.exit(int(argument))
    if mode == "signal" and told:
        signal.signal(int(argument), signal.SIG_DFL)
        os.kill(os.getpid(), int(argument))
    if mode == "daemon" and told:
        sys.exit(0)
    sleep_forever()


if __name__ == "__main__":
    main()
