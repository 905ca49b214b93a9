"""Why a server ended or stalled before answering anything: one or two lines for the user and the client.

`explain` is pure: from the server's last stderr lines (already made printable
and redacted by the relay), its exit status (None: it stalled, or only closed
its stdout) and what the sandbox granted (`Facts`), it picks the line that
shows what went wrong and, when a pattern below recognizes it, a hint: the
network the sandbox does not have, an `npx`/`uvx` that fetches at every start,
a path outside the binds, a variable the profile does not pass, a command the
sandbox does not hold. `gather` is the one function here that looks at the
host, to fill `Facts`.

Imported only when a start-up fails: nothing of it is on the path of a run
that goes well.
"""

import errno
import posixpath
import re
import signal
from collections.abc import Callable, Collection, Sequence
from typing import Any, NamedTuple

SEEN_MAX = 200  # characters of the server's own line quoted
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/proc", "/dev")


class Facts(NamedTuple):
    """What the sandbox held, as far as a diagnosis needs it."""

    argv: Sequence[str]  # the command that ran in the sandbox
    binds: Sequence[tuple[str, bool]] = ()  # (path in the sandbox, writable)
    env: Collection[str] = ()  # the variables the server got
    env_listed: Collection[str] = ()  # [sandbox] env: the names the profile passes from mcpbox's environment
    network: bool = False
    profile: str = "the profile"  # the profile's file, as the hints name it
    exists: Callable[[str], bool] | None = None  # whether a path exists on the host; None: not known
    locate: Callable[[str], str | None] | None = None  # a command's path on the host's PATH


class Diagnosis(NamedTuple):
    seen: str  # what happened and the server's own line about it
    hint: str | None  # what the sandbox lacked and how to grant it, when recognized

    def lines(self) -> list[str]:
        """For mcpbox's stderr (each gets the prefix 'mcpbox: ')."""
        return [self.seen] if self.hint is None else [self.seen, self.hint]

    def message(self) -> str:
        """One line for the JSON-RPC error the client's pending request gets."""
        return "mcpbox: " + (self.seen if self.hint is None else f"{self.seen} — {self.hint}")


# -- patterns -------------------------------------------------------------------------------------------------

NETWORK = re.compile(
    r"ENOTFOUND|EAI_AGAIN|EAI_NONAME|EAI_FAIL|ECONNREFUSED|ENETUNREACH|EHOSTUNREACH|EAFNOSUPPORT|ETIMEDOUT"
    r"|getaddrinfo|gaierror|(?i:temporary failure in name resolution|name or service not known"
    r"|nodename nor servname|network is unreachable|connection refused|could not resolve host"
    r"|failed to resolve|failed to establish a new connection|address family not supported|fetch failed"
    r"|failed to fetch|failed to lookup address|dns error|name resolution|npm (?:err!|error) network)")
FETCHING = re.compile(r"npm (?:ERR!|error|WARN)|registry\.npmjs\.org|registry\.yarnpkg\.com|pypi\.org"
                      r"|files\.pythonhosted\.org|^(?:error|warning): .*(?:uv|pip)\b|\b(?:npx|uvx|pip|uv)\b")
NOT_FOUND = re.compile(r"ENOENT|Cannot find module|(?i:no such file|not found|does not exist|can't open file"
                       r"|cannot access|cannot open)")
READ_ONLY = re.compile(r"EROFS|(?i:read-only file system)")
DENIED = re.compile(r"EACCES|EPERM\b|(?i:permission denied|operation not permitted)")
PATH = re.compile(r"(?<![\w.~:/\-])/[^\s'\"`,;:()<>\[\]{}|*?]*")
NAME = r"[A-Z][A-Z0-9_]*[A-Z0-9]"
ENV_WORDS = r"(?i:environment\s+variable|env(?:ironment)?\s+var(?:iable)?|env)s?"
ENV_PATTERNS = (  # (pattern with a group "name", whether the name must hold an underscore to count)
    (re.compile(rf"KeyError: ['\"](?P<name>{NAME})['\"]"), False),  # os.environ["NAME"] (with an environ frame)
    (re.compile(rf"{ENV_WORDS}\s*:?\s*['\"`]?(?P<name>{NAME})\b"), False),  # environment variable NAME is ...
    (re.compile(rf"\b(?P<name>{NAME})['\"`]?\s+(?:{ENV_WORDS}\s+)?(?i:(?:is|was|are)\s+)?(?i:not\s+set|not\s+defined"
                r"|unset|missing|required|undefined|empty|must\s+be\s+(?:set|provided|defined|specified)"
                r"|not\s+(?:provided|found\s+in\s+(?:the\s+)?environment))"), True),
    (re.compile(rf"(?i:missing|please\s+set|set\s+the|requires?|provide)\s+(?:(?i:the|an?)\s+)?(?:(?i:required)\s+)?"
                rf"['\"`]?(?P<name>{NAME})\b"), True),
    (re.compile(rf"process\.env\.(?P<name>{NAME})\b.*(?i:undefined|required|missing|not set)"), False),
)
ENVIRON_FRAME = re.compile(r"os\.environ|<frozen os>|/os\.py\"|environ\[")
NOT_NAMES = frozenset([*errno.errorcode.values(), "MODULE_NOT_FOUND"])  # codes, not variables (and EAI_*, ERR_*)
COMMAND_PATTERNS = (
    re.compile(r"(?:^|\s|:)(?P<name>[^\s:'\"`]+): (?:command )?not found\s*$"),  # sh / bash
    re.compile(r"\benv: ['‘\"]?(?P<name>[^'’\":\s]+)['’\"]?: No such file or directory"),  # a #!/usr/bin/env line
    re.compile(r"\bspawn (?P<name>\S+) ENOENT"),  # node child_process
    re.compile(r"FileNotFoundError: \[Errno 2\] No such file or directory: '(?P<name>[^/'][^']*)'"),  # subprocess
    re.compile(r"\bexec(?:vp)? (?P<name>\S+?):? (?:No such file or directory|not found)"),  # bwrap, exec
)
FETCHERS = {"npx": "npm", "pnpx": "npm", "bunx": "npm", "uvx": "pypi", "pipx": "pypi"}
FETCHER_PAIRS = {("npm", "exec"): "npm", ("pnpm", "dlx"): "npm", ("yarn", "dlx"): "npm", ("uv", "tool"): "pypi",
                 ("pipx", "run"): "pypi", ("npm", "x"): "npm"}
NOISE = re.compile(r"^(?:Traceback \(most recent call last\)|During handling of the above|The above exception"
                   r"|Node\.js v\d|node:[\w/]+:\d+$|\S+:\d+$|Require stack:|- /|[\]}),^~\s]*$"
                   r"|npm (?:ERR!|error) (?:A complete log|code |errno |syscall |$)|\s*at )")
ERRORISH = re.compile(r"(?i:error|exception|fatal|fail|cannot|can't|unable|denied|not found|no such|refused"
                      r"|missing|required|invalid|panic|abort)")


# -- explaining -----------------------------------------------------------------------------------------------

def explain(tail: Sequence[str], status: int | None, facts: Facts, stalled_after: float | None = None) -> Diagnosis:
    """`tail`: the server's last stderr lines; `status`: its exit status, None when it has not exited (then
    `stalled_after` says how long it left a request unanswered, or None when it only closed its stdout)."""
    lines = [line.rstrip() for line in tail]
    found = _recognized(lines, status, facts)
    evidence, hint = found if found is not None else (None, None)
    quoted = evidence if evidence is not None else _meaningful(lines)
    head = _headline(status, stalled_after)
    seen = f"{head}: {_trimmed(quoted)}" if quoted else f"{head}; it wrote nothing on stderr"
    return Diagnosis(seen, hint)


def _headline(status: int | None, stalled_after: float | None) -> str:
    if status is None:
        if stalled_after is not None:
            return f"the server answered nothing within {stalled_after:g} s"
        return "the server closed its stdout before answering"
    if status > 128 and status - 128 in signal.valid_signals():
        number = status - 128
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else f"signal {number}"
        return f"the server was killed by {name} (status {status}) before answering"
    return f"the server exited (status {status}) before answering"


def _recognized(lines: list[str], status: int | None, facts: Facts) -> tuple[str | None, str] | None:
    """(the line that shows it, the hint) for the latest line a pattern recognizes; lines that start a message
    (not indented: an exception, node's `Error:`, npm's and the shell's lines) before the indented rest."""
    fetcher = _fetcher(facts.argv)
    for indented in (False, True):
        for line in reversed(lines):
            if not line.strip() or line[:1].isspace() != indented or NOISE.match(line):
                continue
            for rule in RULES:
                hint = rule(line, lines, fetcher, facts)
                if hint is not None:
                    return line.strip(), hint
    if fetcher is not None and not facts.network:
        return None, _fetch_hint(fetcher)
    if status == 127:
        return None, ("status 127: a command was not found inside the sandbox, which holds the system's /usr "
                      "and the command's own folders")
    return None


def _fetch_rule(line: str, lines: list[str], fetcher: tuple[str, str | None] | None, facts: Facts) -> str | None:
    if facts.network or not NETWORK.search(line) or not (fetcher is not None or FETCHING.search(line)):
        return None
    if fetcher is not None:
        return _fetch_hint(fetcher)
    return ("a package manager tried to fetch over the network, and the sandbox has none: install the server "
            "first and run the installed copy (for `npx -y PKG` and `uvx PKG` mcpbox keeps one in its store)")


def _fetch_hint(fetcher: tuple[str, str | None], missing: bool = False) -> str:
    tool, package = fetcher
    registry = FETCHERS.get(tool.split()[0]) or ("pypi" if tool.startswith(("uv", "pip")) else "npm")
    spec = package or "PKG"
    given = f"`npx -y {spec}`" if registry == "npm" else f"`uvx {spec}`"
    problem = (f"{tool} is not inside the sandbox, and would need the network it does not have" if missing else
               f"{tool} fetches {package or 'its package'} over the network at every start, and the sandbox has none")
    return (f"{problem}: give mcpbox {given} itself as the command (not through a shell) and it runs a copy "
            f"installed in its store (`mcpbox install {'npm' if registry == 'npm' else 'pypi'}:{spec}` installs one "
            "ahead)")


def _network_rule(line: str, lines: list[str], fetcher: Any, facts: Facts) -> str | None:
    if facts.network or not NETWORK.search(line):
        return None
    return f"the sandbox has no network: a server that must reach it needs network = true under [sandbox] in " \
           f"{facts.profile}"


def _env_rule(line: str, lines: list[str], fetcher: Any, facts: Facts) -> str | None:
    for pattern, needs_underscore in ENV_PATTERNS:
        for match in pattern.finditer(line):
            name = match.group("name")
            if name in NOT_NAMES or name.startswith(("EAI_", "ERR_")) or (needs_underscore and "_" not in name) \
                    or name in facts.env:
                continue
            if line.startswith("KeyError") and not any(ENVIRON_FRAME.search(other) for other in lines):
                continue
            if name in facts.env_listed:
                return (f"{name} is passed by [sandbox] env in {facts.profile}, but mcpbox's environment does not "
                        "have it: set it where the client starts this server (its \"env\")")
            return (f"the sandbox gets only the variables its profile names, with their values from mcpbox's "
                    f"environment: add \"{name}\" to env under [sandbox] in {facts.profile}")
    return None


def _path_rule(line: str, lines: list[str], fetcher: Any, facts: Facts) -> str | None:
    if NOT_FOUND.search(line):
        for path in _paths(line):
            hint = _outside(path, facts)
            if hint is not None:
                return hint
    elif READ_ONLY.search(line) or DENIED.search(line):
        read_only = READ_ONLY.search(line) is not None
        for path in _paths(line):
            bind = _bind_of(path, facts)
            if bind is None:
                hint = _outside(path, facts)
                if hint is not None:
                    return hint
                continue
            dest, writable = bind
            if dest.startswith(SYSTEM):
                if read_only:
                    return (f"{path} is in a system folder, read-only in the sandbox: the server can write only in "
                            "/tmp, its private home and the folders read_write grants")
                continue
            if read_only and not writable:
                return (f"{path} is bound read-only: name {dest} under read_write in [sandbox] of {facts.profile} "
                        "if the server must write there")
            if not read_only:
                return (f"{path} is bound, but its permissions on the host keep the sandbox's user out "
                        f"(mcpbox runs the server as a user of its own when it runs as root)")
    return None


def _outside(path: str, facts: Facts) -> str | None:
    """A hint when `path` (or the folder it would be made in) exists on the host but not in the sandbox."""
    if facts.exists is None or _bind_of(path, facts) is not None:
        return None
    where = path if facts.exists(path) else None
    if where is None:
        parent = posixpath.dirname(path)
        if parent != "/" and facts.exists(parent) and _bind_of(parent, facts) is None:
            where = parent
    if where is None:
        return None
    return (f"{where} is outside the sandbox's binds: add it to read_only under [sandbox] in {facts.profile} "
            "(read_write if the server writes there), or name it on the command line")


def _command_rule(line: str, lines: list[str], fetcher: Any, facts: Facts) -> str | None:
    for pattern in COMMAND_PATTERNS:
        match = pattern.search(line)
        if match is None:
            continue
        name = match.group("name").strip("'\"`‘’")
        base = posixpath.basename(name)
        if base in FETCHERS or base in ("npm", "pnpm", "yarn", "uv"):
            return _fetch_hint((base, None), missing=True)
        if name.startswith("/"):
            continue  # a path: _path_rule's, or missing on the host too
        host = facts.locate(name) if facts.locate is not None else None
        where = f" (on the host: {host})" if host else ""
        return (f"{name}{where} is not inside the sandbox, which holds the system's /usr and the command's own "
                f"folders: call it by its absolute path and add its folder to read_only under [sandbox] in "
                f"{facts.profile}")
    return None


RULES: tuple[Callable[[str, list[str], Any, Facts], str | None], ...] = (
    _fetch_rule, _network_rule, _env_rule, _path_rule, _command_rule)


# -- helpers --------------------------------------------------------------------------------------------------

def _fetcher(argv: Sequence[str]) -> tuple[str, str | None] | None:
    """(the fetching launcher, its package) when the command runs one (also inside a `sh -c` string)."""
    words = [word for argument in argv for word in argument.split()]
    for index, word in enumerate(words):
        base = posixpath.basename(word)
        rest = words[index + 1:]
        if base in FETCHERS:
            return base, _package(rest)
        if rest and (base, rest[0]) in FETCHER_PAIRS:
            skip = 2 if (base, rest[0]) == ("uv", "tool") and rest[1:2] == ["run"] else 1
            return f"{base} {' '.join(rest[:skip])}", _package(rest[skip:])
    return None


def _package(words: list[str]) -> str | None:
    skip_value = False
    for word in words:
        if skip_value:
            skip_value = False
        elif word in ("-p", "--package", "--from", "--with", "--python"):
            skip_value = True
        elif not word.startswith("-"):
            return word.strip("'\"")
    return None


def _paths(line: str) -> list[str]:
    found = []
    for match in PATH.finditer(line):
        path = match.group().rstrip(".")
        if len(path) > 1:
            path = posixpath.normpath(path)
            if path not in found:
                found.append(path)
    return found


def _bind_of(path: str, facts: Facts) -> tuple[str, bool] | None:
    """The innermost bind holding `path`, or None."""
    best = None
    for dest, writable in facts.binds:
        if (path == dest or path.startswith(dest.rstrip("/") + "/")) and (best is None or len(dest) > len(best[0])):
            best = (dest, writable)
    return best


def _meaningful(lines: list[str]) -> str | None:
    """The last line that reads as an error, else the last that is not a stack frame or blank."""
    candidates = [line.strip() for line in lines if line.strip() and not NOISE.match(line)]
    unindented = [line.strip() for line in lines if line.strip() and not line[:1].isspace() and not NOISE.match(line)]
    for group in (unindented, candidates):
        for line in reversed(group):
            if ERRORISH.search(line):
                return line
    if unindented:
        return unindented[-1]
    if candidates:
        return candidates[-1]
    blanks_aside = [line.strip() for line in lines if line.strip()]
    return blanks_aside[-1] if blanks_aside else None


def _trimmed(line: str) -> str:
    line = " ".join(line.split())
    return line if len(line) <= SEEN_MAX else line[: SEEN_MAX - 1] + "…"


# -- the host -------------------------------------------------------------------------------------------------

def gather(profile: Any, profile_path: str, command: list[str]) -> Facts:
    """The facts of the sandbox `command` ran in under `profile`, worked out again as `mcpbox run` did (the
    layout is pure), with the host's own file system and PATH for the checks a hint needs."""
    import os
    import shutil

    from mcpbox.paths import shipped_profiles_dir, user_profiles_dir
    from mcpbox.sandbox import layout, resolve, spawn

    sandbox = profile.sandbox
    cwd = os.getcwd()
    if os.path.dirname(os.path.abspath(profile_path)) == os.path.abspath(shipped_profiles_dir()):
        name = os.path.splitext(os.path.basename(profile_path))[0]
        profile_path = (f"{os.path.join(user_profiles_dir(), name + '.toml')} (a copy of the shipped "
                        f"{profile_path}, which it then overrides)")
    granted = sandbox.granted(cwd)
    facts = Facts(argv=command, binds=granted, env=(*sandbox.env, *sandbox.set_env),
                  env_listed=sandbox.env, network=bool(sandbox.network), profile=profile_path, exists=os.path.exists,
                  locate=lambda name: shutil.which(name, path=os.environ.get("PATH")))
    try:
        resolved = resolve.resolve(command, os.path.expanduser("~"), os.environ.get("PATH"),
                                   writable_args=sandbox.writable_args)
        plan = layout.plan(profile, resolved, layout.host_facts(sandbox.network), spawn.sandbox_user())
    except Exception:  # the layout of a run that started cannot fail; if it does, the profile's own binds do
        return facts
    return facts._replace(binds=[(bind.dest, bind.writable) for bind in plan.binds], env=tuple(plan.env))

