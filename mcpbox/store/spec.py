"""`npx ... PKG ARGS` and `uvx ... PKG ARGS` as the package they run: what to install and which bin to start.

Only the options that choose the package are understood; any other runner option (`uvx --with`, `npx -c`)
changes what would run in ways the store does not reproduce, so it is refused by name rather than ignored.
"""

import os
import re
from typing import Literal, NamedTuple

from mcpbox.store.errors import SpecError

Ecosystem = Literal["npm", "pypi"]
RUNNERS: dict[str, Ecosystem] = {"npx": "npm", "uvx": "pypi"}
NPM_EXACT = re.compile(r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?")
PYPI_NAME = re.compile(r"([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(\[[A-Za-z0-9._,\s-]*\])?(.*)")
NPX_FLAGS = frozenset({"-y", "--yes", "-q", "--quiet", "--silent"})
UVX_FLAGS = frozenset({"-q", "--quiet", "--isolated", "--no-progress"})


class Spec(NamedTuple):
    ecosystem: Ecosystem
    package: str  # npm: the name as written (or an absolute tarball path); PyPI: the normalized name
    version: str  # npm: "1.2.3", a range or ""; PyPI: "==1.2", a specifier or "" ("" = the latest)
    bin: str | None  # the executable to start; None: the package's own
    args: tuple[str, ...] = ()
    extras: str = ""  # PyPI: "[a,b]"

    @property
    def requirement(self) -> str:
        """What the installer is asked for."""
        if self.ecosystem == "npm":
            return f"{self.package}@{self.version}" if self.version else self.package
        return f"{self.package}{self.extras}{self.version}"

    @property
    def exact(self) -> str | None:
        """The one version this spec names, if it names one."""
        if self.ecosystem == "npm":
            return self.version if NPM_EXACT.fullmatch(self.version) else None
        version = self.version.removeprefix("==")
        return version if self.version.startswith("==") and re.fullmatch(r"[0-9A-Za-z.+!-]+", version) else None

    @property
    def local(self) -> bool:
        """An npm tarball on this host rather than a registry name (its name is known after installing)."""
        return self.ecosystem == "npm" and self.package.startswith("/")


def is_runner(command: str) -> bool:
    return os.path.basename(command) in RUNNERS


def parse(argv: list[str]) -> Spec:
    """`argv[0]` is `npx` or `uvx` (a path to one too)."""
    runner = os.path.basename(argv[0])
    if runner == "npx":
        return _npx(argv[1:])
    if runner == "uvx":
        return _uvx(argv[1:])
    raise SpecError(f"{argv[0]} is neither npx nor uvx")


def _options(runner: str, words: list[str], flags: frozenset[str], naming: tuple[str, ...],
             usage: str) -> tuple[list[str], list[str]]:
    """A runner's leading options: the values given to the options `naming` a package, and the words after them.
    Any other option is refused by name."""
    values: list[str] = []
    rest = list(words)
    while rest and rest[0].startswith("-"):
        word = rest.pop(0)
        if word == "--":
            break
        option, equals, value = word.partition("=")
        if word in flags:
            continue
        if word in naming and rest:
            values.append(rest.pop(0))
        elif equals and option.startswith("--") and option in naming:
            values.append(value)
        else:
            raise SpecError(f"{runner} option {word!r} is not supported under mcpbox (it runs an installed "
                            f"package: {usage})")
    return values, rest


def _npx(words: list[str]) -> Spec:
    packages, rest = _options("npx", words, NPX_FLAGS, ("-p", "--package"),
                              "npx [-y] [--package PKG] PKG[@VERSION] ARGS")
    if not rest:
        raise SpecError("npx names no package to run")
    if len(packages) > 1:
        raise SpecError("npx with more than one --package is not supported under mcpbox")
    if packages:
        name, version = _npm_name(packages[0])
        return Spec("npm", name, version, rest[0], tuple(rest[1:]))
    name, version = _npm_name(rest[0])
    return Spec("npm", name, version, None, tuple(rest[1:]))


def _npm_name(word: str) -> tuple[str, str]:
    """`@scope/name@1.2` -> (`@scope/name`, `1.2`); a tarball path (or `file:` one) stays whole."""
    if word.startswith("file:"):
        word = word[len("file:"):]
    if word.startswith(("/", "./", "../", "~")):
        path = os.path.abspath(os.path.expanduser(word))
        if not path.endswith((".tgz", ".tar.gz")):
            raise SpecError(f"npx {word}: only a package tarball (.tgz) is supported as a path")
        return path, ""
    head, at, version = word[1:].partition("@") if word.startswith("@") else word.partition("@")
    name = ("@" + head) if word.startswith("@") else head
    if not name or name.count("/") > (1 if name.startswith("@") else 0):
        raise SpecError(f"npx {word}: not an npm package name")
    return name, "" if version == "latest" else version


def _uvx(words: list[str]) -> Spec:
    sources, rest = _options("uvx", words, UVX_FLAGS, ("--from",), "uvx [--from PKG] PKG[==VERSION] ARGS")
    source = sources[-1] if sources else None
    if not rest:
        raise SpecError("uvx names no command to run")
    command = rest[0]
    if source is None:
        name, extras, version = _pypi_requirement(command)
        return Spec("pypi", name, version, name, tuple(rest[1:]), extras)
    name, extras, version = _pypi_requirement(source)
    return Spec("pypi", name, version, command, tuple(rest[1:]), extras)


def _pypi_requirement(word: str) -> tuple[str, str, str]:
    """`Mcp_Server-Time[x]==1.0` -> (`mcp-server-time`, `[x]`, `==1.0`); uvx's `NAME@1.0` means `==1.0`."""
    match = PYPI_NAME.fullmatch(word.strip())
    if match is None:
        raise SpecError(f"uvx {word}: not a PyPI requirement (NAME, NAME==VERSION or NAME@VERSION)")
    name, extras, version = match.group(1), match.group(2) or "", match.group(3).strip()
    if version.startswith("@"):
        version = "" if version == "@latest" else "==" + version[1:]
    if version and not re.fullmatch(r"(?:(?:===?|!=|<=?|>=?|~=)\s*[0-9A-Za-z.*+!-]+\s*,?\s*)+", version):
        raise SpecError(f"uvx {word}: only a version specifier may follow the name (no URLs or markers)")
    return normalize(name), extras.replace(" ", ""), version


def normalize(name: str) -> str:
    """PEP 503's name normalization: `Mcp_Server.Time` and `mcp-server-time` are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()
