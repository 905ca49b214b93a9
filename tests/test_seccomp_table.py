"""The seccomp policy table: exact value covers and a filter cached by content.

The kernel-side behaviour (each refused call really refused inside the sandbox)
is checked by the escape tests with the real bwrap; these check the table.
"""

from __future__ import annotations

import errno

from hypothesis import given, settings
from hypothesis import strategies as st

from mcpbox import cache
from mcpbox.sandbox import seccomp

BLOCKS = seccomp.masked_blocks_excluding(seccomp.PERSONALITY_ALLOWED)


def covered(value: int) -> int:
    return sum(1 for mask, block in BLOCKS if value & mask == block)


@settings(max_examples=2000)
@given(st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_personality_blocks_cover_every_other_value_exactly_once(value: int) -> None:
    expected = 0 if value in seccomp.PERSONALITY_ALLOWED else 1
    assert covered(value) == expected


def test_personality_allowed_values_and_their_neighbours() -> None:
    for value in seccomp.PERSONALITY_ALLOWED:
        assert covered(value) == 0
        for neighbour in (value - 1, value + 1):
            if 0 <= neighbour <= 0xFFFFFFFF and neighbour not in seccomp.PERSONALITY_ALLOWED:
                assert covered(neighbour) == 1


def test_socket_families_refused_without_network_are_all_but_unix() -> None:
    refused = {rule.comparisons[0][2] for rule in seccomp.rules(network=False)
               if rule.syscall == "socket" and rule.comparisons[0][1] == "EQ"}
    assert refused == set(range(seccomp.AF_MAX + 1)) - {seccomp.AF_UNIX}
    with_network = {rule.comparisons[0][2] for rule in seccomp.rules(network=True)
                    if rule.syscall == "socket" and rule.comparisons[0][1] == "EQ"}
    assert seccomp.AF_INET not in with_network and seccomp.AF_INET6 not in with_network
    assert all(r.errno == errno.EAFNOSUPPORT for r in seccomp.rules(False) if r.syscall in ("socket", "socketpair"))


def test_ioctl_rules_mask_to_32_bits() -> None:
    ioctl = [rule for rule in seccomp.rules(False) if rule.syscall == "ioctl"]
    assert {rule.comparisons[0][3] for rule in ioctl} == {seccomp.TIOCSTI, seccomp.TIOCLINUX}
    assert all(rule.comparisons[0][1:3] == ("MASKED_EQ", 0xFFFFFFFF) for rule in ioctl)


def test_compiled_filter_is_cached_by_content(monkeypatch) -> None:
    program = seccomp.compile_bpf(network=False)
    assert len(program) % 8 == 0 and len(program) > 8 * 100

    def must_not_compile(*_: object) -> bytes:
        raise AssertionError("an unchanged policy must come from the cache")

    monkeypatch.setattr(seccomp, "_compile", must_not_compile)
    assert seccomp.compile_bpf(network=False) == program
    assert cache.read("seccomp", b"another policy") is None
