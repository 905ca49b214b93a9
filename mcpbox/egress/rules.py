"""Which connections a profile's network list allows: pure functions, the resolver injected.

An entry names a host and optionally a port: `api.github.com` (ports 443 and 80), `example.com:8443`,
`*.githubusercontent.com` (subdomains only, never the bare domain), an address `127.0.0.2:8080` or
`[::1]:8080`. A target must match an entry by name and port, and then the address it resolves to must be
a public one, unless the list names that very address: a name that resolves into loopback, link-local
(169.254.169.254, the cloud metadata service), private, shared, unique-local or other special ranges is
refused, so that DNS rebinding or an allowed name pointed at the LAN reaches nothing there. IPv4-mapped and
-compatible IPv6 forms are judged as the IPv4 address they carry. The proxy connects to the address judged
here and never resolves again.
"""

import ipaddress
import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

DEFAULT_PORTS = (443, 80)
LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]  # (host, port) -> addresses, as getaddrinfo gives them


class Entry(NamedTuple):
    text: str  # as the profile writes it, for messages
    host: str  # lower-case name without "*.", or an address in its compressed form
    wildcard: bool  # "*.host": subdomains of host only
    ports: tuple[int, ...]
    address: Address | None  # the entry names an address (then only that address, any range)

    def matches(self, host: str, port: int) -> bool:
        if port not in self.ports:
            return False
        if self.address is not None:
            return literal(host) == self.address
        return host.endswith("." + self.host) if self.wildcard else host == self.host


class Decision(NamedTuple):
    allowed: bool
    address: str | None  # where to connect (allowed), or what the name resolved to (refused by range)
    rule: str  # the entry that allowed it, or why not


def parse(text: str) -> Entry:
    """One entry of a profile's list; ValueError with a message for a person."""
    written = text.strip().lower()
    host, port = _split_port(written, text)
    ports = (port,) if port is not None else DEFAULT_PORTS
    address = literal(host)
    if address is not None:
        return Entry(text, str(address), False, ports, address)
    wildcard = host.startswith("*.")
    name = host[2:] if wildcard else host
    labels = name.split(".")
    if not name or not all(LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{text!r} is not a host name, '*.domain', or an address (with an optional ':port')")
    if wildcard and len(labels) < 2:
        raise ValueError(f"{text!r} is too broad: '*.' must be followed by a domain with at least two labels, "
                         "like '*.example.com'")
    return Entry(text, name, wildcard, ports, None)


def _split_port(written: str, text: str) -> tuple[str, int | None]:
    if written.startswith("["):
        host, bracket, rest = written[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r}: an IPv6 address goes in brackets, like '[::1]:8080'")
        return host, _port(rest[1:], text) if rest else None
    if written.count(":") == 1:
        host, _, port = written.partition(":")
        return host, _port(port, text)
    return written, None


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535")
    return int(text)


def literal(host: str) -> Address | None:
    """The address a host string spells, if it is one (IPv6 with or without brackets)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def public(address: Address) -> bool:
    """Whether the address is on the public internet: not loopback, link-local, private, shared (CGNAT),
    unique-local, multicast, reserved or unspecified, in any of its IPv6 spellings."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = address.ipv4_mapped or _compatible(address) or address.sixtofour
        if carried is not None:
            return public(carried)
        if address.teredo is not None:
            return False
        if address in ipaddress.ip_network("64:ff9b::/96"):  # NAT64: the IPv4 address it translates
            return public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return address.is_global and not address.is_multicast


def _compatible(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The deprecated IPv4-compatible form ::a.b.c.d (not :: and ::1)."""
    value = int(address)
    return ipaddress.IPv4Address(value) if value >> 32 == 0 and value > 1 else None


def normal(host: str) -> str:
    """A target's host as entries are matched against it: no brackets, lower case, no trailing dot."""
    return host.strip("[]").lower().rstrip(".")


def decide(host: str, port: int, entries: Sequence[Entry], resolve: Resolver) -> Decision:
    """Whether the profile lets the server reach host:port, and the one address to connect to."""
    name = normal(host)
    entry = next((entry for entry in entries if entry.matches(name, port)), None)
    if entry is None:
        return Decision(False, None, f"{target(name, port)} is not on the profile's network list")
    if entry.address is not None:
        return Decision(True, str(entry.address), entry.text)
    try:
        found = [address for address in map(literal, resolve(name, port)) if address is not None]
    except OSError as error:
        return Decision(False, None, f"{name} does not resolve ({error.strerror or error})")
    for address in found:
        if public(address):
            return Decision(True, str(address), entry.text)
    if not found:
        return Decision(False, None, f"{name} does not resolve")
    return Decision(False, str(found[0]), f"{name} resolves to {found[0]}, which is not a public address (allowed "
                                          "only when the list names that address)")


def target(host: str, port: int) -> str:
    """host:port as a profile's list and mcpbox's messages write it (an IPv6 address in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
