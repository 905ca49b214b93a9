"""The host half of the egress proxy: HTTP CONNECT, plain HTTP proxying and SOCKS5 on one Unix socket.

Every connection the server makes to its proxy address arrives here through the in-sandbox forwarder.
The first byte tells the protocol (5: SOCKS5, else HTTP). The target is judged by mcpbox.egress.rules,
resolved here, and connected to by the one address judged; TLS is not intercepted (CONNECT and SOCKS
carry the bytes as they are). A refusal gets an answer the server can show (a 403 naming the host, the
reason and the profile; SOCKS reply 2), one stderr line per refused host:port, and each connection one
audit line: host, port, address, decision, the rule, bytes each way, duration. The same record goes to an
optional observer (`mcpbox learn`, which writes the hosts used from them).

Owned by `mcpbox run` as a context manager: one listener thread and a thread per connection (at most
`[limits] connections`; more are refused with 503), all ended and joined when the session ends.
"""

import os
import selectors
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Sequence

from mcpbox.egress import rules
from mcpbox.errors import say

SOCKET_NAME = "egress.sock"
HEADER_LIMIT = 64 * 1024
CONNECT_TIMEOUT = 15.0
CHUNK = 256 * 1024


def resolve(host: str, port: int) -> list[str]:
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


class Proxy:
    def __init__(self, entries: Sequence[rules.Entry], profile: str, audit_path: str | None, connections: int,
                 owner: int | None = None, resolver: rules.Resolver = resolve,
                 observe: Callable[[dict[str, object]], None] | None = None) -> None:
        """`observe`: called from the connection's thread with each connection's audit record, once it ends."""
        self.entries = list(entries)
        self.observe = observe
        self.profile = profile
        self.audit_path = audit_path
        self.resolver = resolver
        self.directory = tempfile.mkdtemp(prefix="mcpbox-egress-")
        self.path = os.path.join(self.directory, SOCKET_NAME)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(128)
        if owner is not None:  # as root, the sandbox's own uid must reach the socket; no one else may
            os.chown(self.directory, owner, owner)
            os.chown(self.path, owner, owner)
        self._slots = threading.BoundedSemaphore(connections)
        self._stop_read, self._stop_write = os.pipe2(os.O_CLOEXEC)
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._said: set[str] = set()
        self._open: set[socket.socket] = set()
        self._serving = threading.Thread(target=self._serve, name="mcpbox-egress")

    def __enter__(self) -> "Proxy":
        self._serving.start()
        return self

    def __exit__(self, *_: object) -> None:
        os.write(self._stop_write, b"x")
        self._serving.join()
        with self._lock:
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            threads = list(self._threads)
        for thread in threads:
            thread.join()
        self._listener.close()
        for fd in (self._stop_read, self._stop_write):
            os.close(fd)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._stop_read, selectors.EVENT_READ)
            while True:
                ready = [key.fileobj for key, _ in selector.select()]
                if self._stop_read in ready:
                    return
                client, _ = self._listener.accept()
                if not self._slots.acquire(blocking=False):
                    _refuse_busy(client)
                    continue
                thread = threading.Thread(target=self._connection, args=(client,), name="mcpbox-egress-conn")
                with self._lock:
                    self._threads.add(thread)
                    self._open.add(client)
                thread.start()

    def _connection(self, client: socket.socket) -> None:
        began = time.monotonic()
        record: dict[str, object] = {}
        try:
            record = self._handle(client)
        except (OSError, ValueError) as error:
            record.setdefault("decision", "error")
            record["reason"] = str(error)
        finally:
            client.close()
            with self._lock:
                self._open.discard(client)
                self._threads.discard(threading.current_thread())
            self._slots.release()
            if record:
                from mcpbox.audit import write_one

                record["seconds"] = round(time.monotonic() - began, 3)
                write_one(self.audit_path, event="egress", server=os.path.basename(self.profile).removesuffix(".toml"),
                          **record)
                if self.observe is not None:
                    self.observe(record)

    def _handle(self, client: socket.socket) -> dict[str, object]:
        first = client.recv(1, socket.MSG_PEEK)
        if not first:
            return {}
        if first == b"\x05":
            return self._socks(client)
        return self._http(client)

    # HTTP -------------------------------------------------------------------------------------------------

    def _http(self, client: socket.socket) -> dict[str, object]:
        head, rest = _read_head(client)
        request_line, _, headers = head.partition(b"\r\n")
        method, target, version = (request_line.decode("latin-1").split(" ") + ["", ""])[:3]
        if method == "CONNECT":
            host, port = _host_port(target, None)
            upstream, record = self._open_upstream(host, port, "http-connect")
            if upstream is None:
                client.sendall(_refusal(record, self.profile))
                return record
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            return self._splice(client, upstream, rest, record)
        if not target.startswith("http://"):
            client.sendall(_response(400, f"mcpbox's proxy takes CONNECT and http:// requests, not {target!r}\n"))
            return {"decision": "error", "reason": f"unsupported request {method} {target[:80]}"}
        authority, slash, path = target[len("http://"):].partition("/")
        host, port = _host_port(authority, 80)
        upstream, record = self._open_upstream(host, port, "http")
        if upstream is None:
            client.sendall(_refusal(record, self.profile))
            return record
        kept = [line for line in headers.split(b"\r\n") if line and not line.lower().startswith(
            (b"proxy-connection:", b"proxy-authorization:", b"connection:", b"keep-alive:"))]
        forwarded = b"\r\n".join([f"{method} {slash}{path} {version}".encode("latin-1"), *kept,
                                  b"Connection: close"]) + b"\r\n\r\n"
        return self._splice(client, upstream, forwarded + rest, record)

    # SOCKS5 -----------------------------------------------------------------------------------------------

    def _socks(self, client: socket.socket) -> dict[str, object]:
        _, count = _exactly(client, 2)
        methods = _exactly(client, count)
        if 0 not in methods:
            client.sendall(b"\x05\xff")
            return {"decision": "error", "reason": "SOCKS5 without the no-authentication method"}
        client.sendall(b"\x05\x00")
        _, command, _, kind = _exactly(client, 4)
        if kind == 1:
            host = socket.inet_ntop(socket.AF_INET, _exactly(client, 4))
        elif kind == 4:
            host = socket.inet_ntop(socket.AF_INET6, _exactly(client, 16))
        elif kind == 3:
            host = _exactly(client, _exactly(client, 1)[0]).decode("idna")
        else:
            client.sendall(b"\x05\x08\x00\x01" + bytes(6))
            return {"decision": "error", "reason": f"SOCKS5 address type {kind}"}
        (port,) = struct.unpack("!H", _exactly(client, 2))
        if command != 1:
            client.sendall(b"\x05\x07\x00\x01" + bytes(6))
            return {"decision": "error", "host": host, "port": port, "reason": f"SOCKS5 command {command}"}
        upstream, record = self._open_upstream(host, port, "socks5")
        if upstream is None:
            client.sendall(b"\x05" + (b"\x02" if record["decision"] == "deny" else b"\x05") + b"\x00\x01" + bytes(6))
            return record
        client.sendall(b"\x05\x00\x00\x01" + bytes(6))
        return self._splice(client, upstream, b"", record)

    # both -------------------------------------------------------------------------------------------------

    def _open_upstream(self, host: str, port: int, kind: str) -> tuple[socket.socket | None, dict[str, object]]:
        decision = rules.decide(host, port, self.entries, self.resolver)
        record: dict[str, object] = {"kind": kind, "host": host, "port": port, "address": decision.address,
                                     "rule": decision.rule}
        if not decision.allowed or decision.address is None:
            record["decision"] = "deny"
            self._say_once(f"{host}:{port}", f"refused the server's connection to {host}:{port}: "
                                             f"{decision.rule}")
            return None, record
        try:
            upstream = socket.create_connection((decision.address, port), timeout=CONNECT_TIMEOUT)
        except OSError as error:
            record.update(decision="error", reason=f"cannot connect to {decision.address}:{port}: "
                                                   f"{error.strerror or error}")
            return None, record
        upstream.settimeout(None)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # relayed writes go out as they come
        record["decision"] = "allow"
        return upstream, record

    def _splice(self, client: socket.socket, upstream: socket.socket, first: bytes,
                record: dict[str, object]) -> dict[str, object]:
        with self._lock:
            self._open.add(upstream)
        sent = received = 0
        try:
            if first:
                upstream.sendall(first)
                sent += len(first)
            sent, received = _pump(client, upstream, sent)
        finally:
            with self._lock:
                self._open.discard(upstream)
            upstream.close()
        record.update(sent=sent, received=received)
        return record

    def _say_once(self, key: str, line: str) -> None:
        with self._lock:
            if key in self._said:
                return
            self._said.add(key)
        say(line)


def _pump(client: socket.socket, upstream: socket.socket, sent: int) -> tuple[int, int]:
    """Both directions until both are closed; a half-close is passed on."""
    received = 0
    open_ends = {client: upstream, upstream: client}
    with selectors.DefaultSelector() as selector:
        for sock in open_ends:
            selector.register(sock, selectors.EVENT_READ)
        while open_ends:
            for key, _ in selector.select():
                source = key.fileobj
                assert isinstance(source, socket.socket)
                try:
                    data = source.recv(CHUNK)
                except OSError:
                    data = b""
                sink = open_ends[source]
                if not data:
                    selector.unregister(source)
                    del open_ends[source]
                    try:
                        sink.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    continue
                try:
                    sink.sendall(data)
                except OSError:
                    return sent, received
                if source is client:
                    sent += len(data)
                else:
                    received += len(data)
    return sent, received


def _read_head(client: socket.socket) -> tuple[bytes, bytes]:
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        data = client.recv(8192)
        if not data:
            raise ValueError("the request ended before its headers did")
        buffer += data
        if len(buffer) > HEADER_LIMIT:
            raise ValueError("request headers over 64 KiB")
    head, _, rest = buffer.partition(b"\r\n\r\n")
    return head, rest


def _exactly(client: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        more = client.recv(count - len(data))
        if not more:
            raise ValueError("the SOCKS5 request ended early")
        data += more
    return data


def _host_port(authority: str, default: int | None) -> tuple[str, int]:
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = authority.rpartition(":") if authority.count(":") == 1 else (authority, "", "")
    if not port and default is None:
        raise ValueError(f"no port in {authority!r}")
    if port and not port.isdigit():
        raise ValueError(f"a bad port in {authority!r}")
    return host, int(port) if port else int(default or 0)


def _response(status: int, body: str) -> bytes:
    reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway", 503: "Service Unavailable"}[status]
    data = body.encode()
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {len(data)}"
            "\r\nConnection: close\r\n\r\n").encode() + data


def _refusal(record: dict[str, object], profile: str) -> bytes:
    target = f"{record['host']}:{record['port']}"
    if record["decision"] == "deny":
        return _response(403, f"mcpbox refused {target}: {record['rule']} (profile {profile})\n")
    return _response(502, f"mcpbox could not reach {target}: {record.get('reason')}\n")


def _refuse_busy(client: socket.socket) -> None:
    try:
        client.sendall(_response(503, "mcpbox: too many open connections ([limits] connections)\n"))
    except OSError:
        pass
    client.close()
