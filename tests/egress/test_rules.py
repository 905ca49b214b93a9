"""The egress rules as a pure function, with an injected resolver: nothing here opens a socket."""

from __future__ import annotations

import pytest

from mcpbox.egress import rules

LIST = ["api.github.com", "*.githubusercontent.com", "example.com:8443", "127.0.0.2:8080", "[::1]:9000"]
NAMES = {
    "api.github.com": ["140.82.112.5"],
    "raw.githubusercontent.com": ["185.199.108.133", "2606:50c0:8000::154"],
    "example.com": ["93.184.215.14"],
    "rebound.githubusercontent.com": ["127.0.0.1"],
    "metadata.githubusercontent.com": ["169.254.169.254"],
    "lan.githubusercontent.com": ["192.168.1.10"],
    "cgnat.githubusercontent.com": ["100.64.0.1"],
    "ula.githubusercontent.com": ["fd00::1"],
    "linklocal6.githubusercontent.com": ["fe80::1"],
    "mapped.githubusercontent.com": ["::ffff:10.0.0.1"],
    "mapped-public.githubusercontent.com": ["::ffff:140.82.112.5"],
    "nat64.githubusercontent.com": ["64:ff9b::a9fe:a9fe"],
    "sixtofour.githubusercontent.com": ["2002:c0a8:0101::1"],
    "mixed.githubusercontent.com": ["10.0.0.5", "185.199.108.133"],
    "unspecified.githubusercontent.com": ["0.0.0.0"],
}


def resolver(host: str, port: int) -> list[str]:
    if host not in NAMES:
        raise OSError(-2, "Name or service not known")
    return NAMES[host]


ENTRIES = [rules.parse(entry) for entry in LIST]


@pytest.mark.parametrize(("host", "port", "address", "rule"), [
    ("api.github.com", 443, "140.82.112.5", "api.github.com"),
    ("API.GitHub.com.", 80, "140.82.112.5", "api.github.com"),
    ("raw.githubusercontent.com", 443, "185.199.108.133", "*.githubusercontent.com"),
    ("example.com", 8443, "93.184.215.14", "example.com:8443"),
    ("127.0.0.2", 8080, "127.0.0.2", "127.0.0.2:8080"),
    ("[::1]", 9000, "::1", "[::1]:9000"),
    ("mapped-public.githubusercontent.com", 443, "::ffff:8c52:7005", "*.githubusercontent.com"),
    ("mixed.githubusercontent.com", 443, "185.199.108.133", "*.githubusercontent.com"),
])
def test_allowed_targets_connect_to_the_address_judged(host: str, port: int, address: str, rule: str) -> None:
    assert rules.decide(host, port, ENTRIES, resolver) == rules.Decision(True, address, rule)


@pytest.mark.parametrize(("host", "port", "why"), [
    ("api.github.com", 22, "api.github.com:22 is not on the profile's network list"),
    ("example.com", 443, "example.com:443 is not on the profile's network list"),
    ("githubusercontent.com", 443, "githubusercontent.com:443 is not on the profile's network list"),
    ("evilgithubusercontent.com", 443, "is not on the profile's network list"),
    ("127.0.0.2", 8081, "127.0.0.2:8081 is not on the profile's network list"),
    ("127.0.0.3", 8080, "127.0.0.3:8080 is not on the profile's network list"),
    ("localhost", 8080, "localhost:8080 is not on the profile's network list"),
    ("169.254.169.254", 80, "169.254.169.254:80 is not on the profile's network list"),
    ("rebound.githubusercontent.com", 443, "resolves to 127.0.0.1, which is not a public address"),
    ("metadata.githubusercontent.com", 80, "resolves to 169.254.169.254, which is not a public address"),
    ("lan.githubusercontent.com", 443, "resolves to 192.168.1.10"),
    ("cgnat.githubusercontent.com", 443, "resolves to 100.64.0.1"),
    ("ula.githubusercontent.com", 443, "resolves to fd00::1"),
    ("linklocal6.githubusercontent.com", 443, "resolves to fe80::1"),
    ("mapped.githubusercontent.com", 443, "resolves to ::ffff:a00:1"),
    ("nat64.githubusercontent.com", 443, "resolves to 64:ff9b::a9fe:a9fe"),
    ("sixtofour.githubusercontent.com", 443, "resolves to 2002:c0a8:101::1"),
    ("unspecified.githubusercontent.com", 443, "resolves to 0.0.0.0"),
    ("missing.githubusercontent.com", 443, "missing.githubusercontent.com does not resolve"),
])
def test_refused_targets_say_why(host: str, port: int, why: str) -> None:
    decision = rules.decide(host, port, ENTRIES, resolver)
    assert not decision.allowed and why in decision.rule, decision


@pytest.mark.parametrize(("entry", "said"), [
    ("*", "is not a host name"),
    ("*.com", "is too broad"),
    ("*.*.example.com", "is not a host name"),
    ("ex*ample.com", "is not a host name"),
    ("example.com:0", "the port must be a number from 1 to 65535"),
    ("example.com:http", "the port must be a number"),
    ("[::1", "an IPv6 address goes in brackets"),
])
def test_broad_or_malformed_entries_are_refused(entry: str, said: str) -> None:
    with pytest.raises(ValueError, match=said.replace("(", "\\(")):
        rules.parse(entry)


def test_an_explicitly_listed_private_address_is_allowed_by_address_only() -> None:
    entries = [rules.parse("192.168.1.10:8080"), rules.parse("*.githubusercontent.com")]
    assert rules.decide("192.168.1.10", 8080, entries, resolver).allowed
    assert not rules.decide("lan.githubusercontent.com", 443, entries, resolver).allowed
