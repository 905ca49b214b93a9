"""What a command needs from the host to start: its executable, interpreter and package tree.

A server is a venv console script, a node package behind `node_modules/.bin`,
a script given to an interpreter, or a single binary. Each needs a few host
paths bound read-only (the venv and its base interpreter, the whole
`node_modules` tree, the script file) and nothing more. A path is widened to a
prefix only when the prefix is not a place that holds the user's secrets.
"""

import os
import shutil
from collections.abc import Mapping
from typing import NamedTuple

from mcpbox.errors import CommandNotFound
from mcpbox.paths import within

SYSTEM_PREFIX = "/usr"
SECRET_NAMES = frozenset({
    ".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".config", ".netrc", ".password-store",
    ".pki", ".git-credentials", ".local", ".mozilla", ".npmrc", ".pypirc", ".vault-token",
})
NEVER_WIDEN = frozenset({"/", "/home", "/root", "/etc", "/tmp", "/var", "/run", "/proc", "/sys", "/dev",
                         "/opt", "/srv", "/mnt", "/media", "/usr/local", "/var/tmp"})
INTERPRETERS = ("python", "pypy", "node", "nodejs", "bun", "deno", "perl", "ruby", "bash", "sh", "dash", "zsh")
NO_SCRIPT_OPTIONS = frozenset({"-m", "-c", "-e", "-p", "--eval", "--print", "-"})
PROJECT_MARKERS = ("package.json", "pyproject.toml", "setup.py", ".venv")
SOURCE_SUFFIXES = {".py": (".py",), ".js": (".js", ".mjs", ".cjs", ".json"), ".mjs": (".js", ".mjs", ".cjs", ".json"),
                   ".cjs": (".js", ".mjs", ".cjs", ".json"), ".ts": (".ts", ".js", ".json")}


class Needs:
    """Host paths a command needs read-only, and directories to put first on its PATH."""

    def __init__(self, binds: list[str] | None = None, path_dirs: list[str] | None = None) -> None:
        self.binds = binds or []
        self.path_dirs = path_dirs or []

    def bind(self, path: str) -> None:
        if path not in self.binds:
            self.binds.append(path)

    def put_on_path(self, directory: str) -> None:
        if not _is_system(os.path.realpath(directory)) and directory not in self.path_dirs:
            self.path_dirs.append(directory)


class Command(NamedTuple):
    argv: list[str]  # argv[0] is the absolute path of the executable
    needs: Needs
    arguments: list[str] = []  # host paths named by arguments: bound (read-only unless writable_args)
    notes: list[tuple[str, str]] = []  # (path, line) per argument path left unbound, and why


def _is_system(path: str) -> bool:
    """Under /usr, which the sandbox always has (merged /bin and /lib point there)."""
    return within(path, SYSTEM_PREFIX)


def find_executable(name: str, search_path: str | None) -> str:
    if os.sep in name:
        path = os.path.abspath(os.path.expanduser(name))
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
        reason = "is not executable" if os.path.isfile(path) else "does not exist"
        raise CommandNotFound(f"command {name!r} {reason}")
    found = shutil.which(name, path=search_path)
    if found is None:
        raise CommandNotFound(
            f"command {name!r} is not on PATH ({search_path or 'empty'}); give its absolute path"
        )
    return os.path.abspath(found)


def resolve(argv: list[str], home: str, search_path: str | None,
            verified: Mapping[str, str] | None = None, writable_args: bool = False) -> Command:
    """`verified` maps each verified path to its staged copy, which is what will run there: shebangs are read
    from the copy, never from an original that may have changed since it was verified. With `writable_args`
    a file argument is bound by its folder (a database's journal, an editor's atomic replace)."""
    executable = find_executable(argv[0], search_path)
    needs = Needs()
    _add_program(executable, needs, home, search_path, verified or {}, depth=0)
    script = None
    if _is_interpreter(os.path.basename(os.path.realpath(executable))):
        script = _script_argument(argv[1:])
        if script is not None:
            _add_tree(os.path.abspath(script), needs, home)
            _add_source(os.path.abspath(script), needs, home)
    arguments, notes = argument_paths([a for a in argv[1:] if a != script], home, writable_args)
    return Command([executable, *argv[1:]], needs, arguments, notes)


def _add_source(script: str, needs: Needs, home: str) -> None:
    """A script run from its source tree imports its own modules: bind its project root (the nearest folder
    with package.json, pyproject.toml, setup.py or .venv), or, with none, its sibling modules and packages."""
    if _is_system(script) or "/node_modules/" in script or _venv_root(script) is not None:
        return
    directory = os.path.dirname(script)
    candidate = directory
    while candidate not in NEVER_WIDEN and not within(home, candidate):
        if any(os.path.exists(os.path.join(candidate, marker)) for marker in PROJECT_MARKERS):
            if _may_widen(candidate, home):
                needs.bind(candidate)
            return
        candidate = os.path.dirname(candidate)
    suffixes = SOURCE_SUFFIXES.get(os.path.splitext(script)[1], ())
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return
    for name in names:
        path = os.path.join(directory, name)
        if name.startswith(".") or name in SECRET_NAMES:
            continue
        if os.path.splitext(name)[1] in suffixes and os.path.isfile(path):
            needs.bind(path)
        elif os.path.isfile(os.path.join(path, "__init__.py")) and ".py" in suffixes and _may_widen(path, home):
            needs.bind(path)


def argument_paths(arguments: list[str], home: str, writable: bool) -> tuple[list[str], list[tuple[str, str]]]:
    """Host paths the arguments name (PATH, ~/PATH, ./PATH, --option=PATH) that exist: the folders given to a
    filesystem server, a repository, a database. Never a place for secrets, the home or a system root."""
    cwd = os.getcwd()
    found: list[str] = []
    notes: list[tuple[str, str]] = []
    for argument in arguments:
        value = argument.split("=", 1)[1] if argument.startswith("-") and "=" in argument else argument
        if not value.startswith(("/", "~/", "./", "../")) and value not in ("~", ".", ".."):
            continue
        path = os.path.normpath(os.path.join(cwd, os.path.expanduser(value)))
        if _is_system(path):
            continue
        if writable and not os.path.isdir(path) and os.path.isdir(os.path.dirname(path)):
            path = os.path.dirname(path)  # a file's folder: where it is made, replaced, journaled
        elif not os.path.exists(path):
            if os.path.isdir(os.path.dirname(path)) and value.startswith(("/", "~")):
                notes.append((path, f"the argument {value} does not exist, so nothing is bound for it; if the server is "
                             "to create it, set [sandbox] writable_args = true (its folder is then bound)"))
            continue
        if path in found:
            continue
        refusal = _refusal(path, home)
        if refusal is None:
            found.append(path)
        else:
            notes.append((path, f"the argument {value} is not bound: {refusal}; name it in [sandbox] read_only or "
                                "read_write if the server must have it"))
    return found, notes


def _refusal(path: str, home: str) -> str | None:
    """Why an argument's path may not be bound automatically, or None."""
    if path in NEVER_WIDEN or within(home, path):
        return "it is a system root, the home folder or above it"
    if SECRET_NAMES & set(path.split("/")):
        return "it lies in a folder for secrets"
    if os.path.isdir(path) and not _may_widen(path, home):
        return "it holds a folder for secrets"
    return None


def _is_interpreter(name: str) -> bool:
    """python3.11, node, bash...: a program whose first file argument is the code it runs."""
    return name.rstrip("0123456789.") in INTERPRETERS


def _add_program(path: str, needs: Needs, home: str, search_path: str | None, verified: Mapping[str, str],
                 depth: int) -> None:
    """Bind an executable (its logical and real location) and, for a script, its interpreter."""
    _add_tree(path, needs, home)
    real = os.path.realpath(path)
    if real != path:
        _add_tree(real, needs, home)
    needs.put_on_path(os.path.dirname(path))
    interpreter = _shebang(_running_copy(real, verified))
    if interpreter is None or depth > 3:
        return
    program, *arguments = interpreter
    if os.path.basename(program) == "env":
        names = [a for a in arguments if not a.startswith("-") and "=" not in a]
        if not names:
            return
        program = shutil.which(names[0], path=search_path) or ""
        if not program:
            raise CommandNotFound(f"{path} runs {names[0]!r}, which is not on PATH ({search_path})")
    _add_program(os.path.abspath(program), needs, home, search_path, verified, depth + 1)


def _running_copy(path: str, verified: Mapping[str, str]) -> str:
    """Where the bytes that run at `path` are: inside a verified path, its staged copy."""
    for original, staged in verified.items():
        if within(path, original):
            return staged + path[len(original):]
    return path


def _add_tree(path: str, needs: Needs, home: str) -> None:
    """Bind the smallest tree that makes `path` work: a node_modules root, a venv, a bin/ prefix.

    What lies in /usr is there already, also through a merged /bin; but a venv's `bin/python` is a link into
    /usr and still needs its venv (judged by the folder the path is in, not by where its link leads)."""
    if _is_system(path) or _is_system(os.path.realpath(os.path.dirname(path))):
        return
    marker = "/node_modules/"
    if marker in path + "/":
        root = path[: (path + "/").index(marker) + len(marker) - 1]
        needs.bind(root if _may_widen(root, home) else path)
        return
    venv = _venv_root(path)
    if venv is not None and _may_widen(venv, home):
        needs.bind(venv)
        base = _venv_base(venv)
        if base is not None:
            _add_tree(base, needs, home)
        return
    directory = os.path.dirname(path)
    if os.path.basename(directory) == "bin":
        prefix = os.path.dirname(directory)
        if _may_widen(prefix, home):
            needs.bind(prefix)
            return
    needs.bind(path)


def _may_widen(directory: str, home: str) -> bool:
    if directory in NEVER_WIDEN or within(home, directory):
        return False
    try:
        return not (SECRET_NAMES & set(os.listdir(directory)))
    except OSError:
        return False


def _venv_root(path: str) -> str | None:
    directory = os.path.dirname(path)
    for candidate in (directory, os.path.dirname(directory)):
        if os.path.isfile(os.path.join(candidate, "pyvenv.cfg")):
            return candidate
    return None


def _venv_base(venv: str) -> str | None:
    """The real base interpreter of a venv, from the `home` line of its pyvenv.cfg."""
    try:
        with open(os.path.join(venv, "pyvenv.cfg")) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "home":
            home_dir = os.path.realpath(value.strip())
            for name in ("python3", "python"):
                candidate = os.path.join(home_dir, name)
                if os.path.exists(candidate):
                    return os.path.realpath(candidate)
    return None


def _shebang(path: str) -> list[str] | None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].decode(errors="replace").split()
    return words or None


def _script_argument(arguments: list[str]) -> str | None:
    """The script an interpreter is asked to run, if it is given as a file."""
    for argument in arguments:
        if argument in NO_SCRIPT_OPTIONS:
            return None
        if argument.startswith("-"):
            continue
        return argument if os.path.isfile(argument) else None
    return None
