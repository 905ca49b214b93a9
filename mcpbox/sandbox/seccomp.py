"""The sandbox's syscall filter: a default-allow filter with an explicit deny list.

Deny-by-default breaks interpreters whose syscall use drifts between versions,
so the baseline allows and refuses what a local tool server never needs:
kernel administration, namespaces and mounts, debugging other processes, the
kernel's riskiest interfaces, and sockets other than AF_UNIX (plus IPv4/IPv6
when the profile grants the network). The compiled BPF is cached under a key
made of this file's source and the inputs, so pyseccomp (and libseccomp) are
loaded only when the policy or the code that compiles it changes.
"""

import errno
import os
from typing import NamedTuple

from mcpbox import cache
from mcpbox.errors import SandboxError

EPERM_SYSCALLS = (
    # kernel administration
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
    "swapon", "swapoff", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "iopl",
    "ioperm", "acct", "quotactl", "quotactl_fd", "syslog", "sethostname", "setdomainname",
    "lookup_dcookie", "nfsservctl", "vhangup",
    # namespaces and mounts
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
    # debugging and reaching into other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd", "kcmp",
    "perf_event_open",
    # kernel attack surface
    "bpf", "userfaultfd", "add_key", "request_key", "keyctl", "fanotify_init",
    "open_by_handle_at", "name_to_handle_at",
    # memory policy
    "mbind", "set_mempolicy", "migrate_pages", "move_pages", "modify_ldt",
)

# ENOSYS makes libc fall back to the older call (clone3 -> clone), whose arguments we can inspect.
ENOSYS_SYSCALLS = (
    "clone3", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
)

# Syscalls newer than libseccomp 2.5.4's table, by x86_64 number: a default-allow filter would
# let them through unnamed. Each is refused with ENOSYS, as an older kernel would answer.
NEWER_SYSCALLS_X86_64 = {
    "futex_requeue": 456, "statmount": 457, "listmount": 458, "lsm_get_self_attr": 459,
    "lsm_set_self_attr": 460, "lsm_list_modules": 461, "mseal": 462, "setxattrat": 463,
    "getxattrat": 464, "listxattrat": 465, "removexattrat": 466, "open_tree_attr": 467,
}
ENOSYS_NEWER = ("statmount", "listmount", "lsm_set_self_attr", "open_tree_attr")

CLONE_NEW_FLAGS = (
    0x00000080,  # CLONE_NEWTIME
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)
TIOCSTI, TIOCLINUX = 0x5412, 0x541C
PERSONALITY_ALLOWED = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
AF_MAX = 46


class Rule(NamedTuple):
    """One libseccomp rule: refuse `syscall` with `errno` when every comparison holds."""

    syscall: str | int
    errno: int
    comparisons: tuple[tuple[int, str, int, int], ...] = ()  # (arg, op, datum_a, datum_b)


def masked_blocks_excluding(allowed: tuple[int, ...], bits: int = 32) -> list[tuple[int, int]]:
    """(mask, value) pairs covering every `bits`-bit value except `allowed`, with no overlap.

    libseccomp cannot put two comparisons on one argument in a rule and resolves
    overlapping rules to the most restrictive action, so "everything but these
    values" is written as disjoint masked-equality blocks, like CIDR prefixes.
    """
    blocks: list[tuple[int, int]] = []

    def cover(prefix: int, depth: int) -> None:
        width = bits - depth
        inside = [v for v in allowed if v >> width == prefix]
        if not inside:
            mask = ((1 << bits) - 1) ^ ((1 << width) - 1)
            blocks.append((mask, prefix << width))
        elif depth < bits:
            cover(prefix << 1, depth + 1)
            cover(prefix << 1 | 1, depth + 1)

    cover(0, 0)
    return blocks


def rules(network: bool) -> list[Rule]:
    table = [Rule(name, errno.EPERM) for name in EPERM_SYSCALLS]
    table += [Rule(name, errno.ENOSYS) for name in ENOSYS_SYSCALLS]
    if os.uname().machine == "x86_64":
        table += [Rule(NEWER_SYSCALLS_X86_64[name], errno.ENOSYS) for name in ENOSYS_NEWER]
    table += [Rule("clone", errno.EPERM, ((0, "MASKED_EQ", flag, flag),)) for flag in CLONE_NEW_FLAGS]
    # Only the low 32 bits reach the tty driver: a plain EQ misses a request with the upper bits set.
    table += [
        Rule("ioctl", errno.EPERM, ((1, "MASKED_EQ", 0xFFFFFFFF, request),))
        for request in (TIOCSTI, TIOCLINUX)
    ]
    table.append(Rule("personality", errno.EPERM, ((0, "GT", 0xFFFFFFFF, 0),)))
    table += [
        Rule("personality", errno.EPERM, ((0, "MASKED_EQ", mask, value),))
        for mask, value in masked_blocks_excluding(PERSONALITY_ALLOWED)
    ]
    families = (AF_UNIX, AF_INET, AF_INET6) if network else (AF_UNIX,)
    for syscall in ("socket", "socketpair"):
        table.append(Rule(syscall, errno.EAFNOSUPPORT, ((0, "GT", AF_MAX, 0),)))
        table += [
            Rule(syscall, errno.EAFNOSUPPORT, ((0, "EQ", family, 0),))
            for family in range(AF_MAX + 1)
            if family not in families
        ]
    return table


def compile_bpf(network: bool) -> bytes:
    """The BPF program for bwrap --seccomp, from the cache or freshly compiled.

    The source and the inputs determine the table and how it compiles, and are
    read in microseconds; building the table only to key by it costs 0.3 ms.
    """
    entry_key = f"{os.uname().machine} {network}\0".encode() + cache.source_of(__file__)
    cached = cache.read("seccomp", entry_key)
    if cached:
        return cached
    program = _compile(rules(network))
    cache.write("seccomp", entry_key, program)
    return program


def _compile(table: list[Rule]) -> bytes:
    import tempfile

    import pyseccomp

    program = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
    for rule in table:
        number = rule.syscall
        if isinstance(number, str):
            number = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, number)
            if number < 0:
                raise SandboxError(f"libseccomp on this host does not know the syscall {rule.syscall}; upgrade libseccomp")
        comparisons = [
            pyseccomp.Arg(arg, getattr(pyseccomp, op), a, b) for arg, op, a, b in rule.comparisons
        ]
        program.add_rule(pyseccomp.ERRNO(rule.errno), number, *comparisons)
    with tempfile.TemporaryFile() as handle:  # export_bpf writes to a real file descriptor
        program.export_bpf(handle)
        handle.seek(0)
        return handle.read()
