"""Install one npm or PyPI package into the store, in the installer sandbox, pinned by hashes.

An entry is `servers/<ecosystem>/<name>@<version>/`: npm's `node_modules` with its `package-lock.json`, or a
venv with the `requirements.txt` (every file by hash) it was installed from. Its manifest, written last, says
the entry is complete; an entry without one is the remains of an install that failed and is made afresh.

npm runs with `--ignore-scripts`: lifecycle scripts are how npm packages attack the machine they are
installed on, and a server that needs one (a native build) is named so that its user can decide. PyPI
installs take wheels only, for the same reason: building an sdist runs its code.
"""

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import NamedTuple
from urllib.parse import urlsplit

from mcpbox import paths
from mcpbox.store import sandboxed
from mcpbox.store.errors import InstallError
from mcpbox.store.spec import Spec, normalize

MANIFEST = "mcpbox-entry.json"
LIFECYCLE = ("preinstall", "install", "postinstall")
NPM_OPTIONS = ("--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier", "--loglevel=error")
PIP_OPTIONS = ("--isolated", "--disable-pip-version-check", "--no-input", "--quiet", "--only-binary", ":all:")


class Installed(NamedTuple):
    ecosystem: str
    package: str
    version: str
    path: str  # the entry
    integrity: str  # of the package itself: npm's lockfile integrity; PyPI: sha256 of its wheel
    bins: dict[str, str]  # executable name -> path inside the entry
    lock: str  # package-lock.json, or requirements.txt with hashes: what reinstalls exactly this
    scripts: tuple[str, ...] = ()  # npm: "NAME (postinstall)" for each lifecycle script not run

    def executable(self, name: str | None) -> str:
        """The absolute path of bin `name`, or of the package's own when None (as npx and uvx choose)."""
        if name is None:
            own = self.package.rsplit("/", 1)[-1]
            name = next(iter(self.bins)) if len(self.bins) == 1 else own
        if name not in self.bins:
            offered = ", ".join(sorted(self.bins)) or "none"
            raise InstallError(f"{self.package}@{self.version} has no executable {name!r} (it has: {offered}); "
                               f"name one with 'npx --package {self.package} NAME' or 'uvx --from {self.package} NAME'")
        return os.path.join(self.path, self.bins[name])


def entry_path(ecosystem: str, package: str, version: str) -> str:
    return os.path.join(paths.servers_dir(), ecosystem, f"{package}@{version}")


def read(path: str) -> Installed | None:
    try:
        with open(os.path.join(path, MANIFEST)) as handle:
            data = json.load(handle)
        return Installed(**{**data, "path": path, "scripts": tuple(data.get("scripts", ()))})
    except (OSError, ValueError, TypeError):
        return None


def installed(ecosystem: str | None = None, package: str | None = None) -> list[Installed]:
    """Complete entries, the most recently installed first."""
    found: list[tuple[float, Installed]] = []
    top = paths.servers_dir()
    for directory, subdirs, files in os.walk(top):
        if MANIFEST in files:
            subdirs.clear()
            entry = read(directory)
            if entry and ecosystem in (None, entry.ecosystem) and package in (None, entry.package):
                found.append((os.stat(os.path.join(directory, MANIFEST)).st_mtime, entry))
        subdirs[:] = [name for name in subdirs if not name.startswith(".") and name != "node_modules"]
    return [entry for _, entry in sorted(found, key=lambda pair: pair[0], reverse=True)]


def find(spec: Spec) -> Installed | None:
    """What is in the store for `spec` without asking a registry: its exact version, or the newest install of
    an unversioned spec. A range is left to the registry (`install`)."""
    if spec.local:
        return None
    exact = spec.exact
    if exact is not None:
        return read(entry_path(spec.ecosystem, spec.package, exact))
    if spec.version:
        return None
    entries = installed(spec.ecosystem, spec.package)
    return entries[0] if entries else None


def install(spec: Spec, lock: str | None = None) -> Installed:
    """Install what `spec` resolves to now, or, given the `lock` of a pin, exactly what it names."""
    with _exclusive():
        return _npm(spec, lock) if spec.ecosystem == "npm" else _pypi(spec, lock)


@contextlib.contextmanager
def _exclusive() -> Iterator[None]:
    """One install at a time: two first runs of one server must not fill one entry together."""
    os.makedirs(paths.servers_dir(), exist_ok=True)
    with open(os.path.join(paths.servers_dir(), ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _staging(ecosystem: str) -> str:
    top = os.path.join(paths.servers_dir(), ecosystem)
    os.makedirs(top, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".staging-", dir=top)
    os.chmod(staging, 0o755)  # a server may run as a uid of its own (mcpbox as root): it must read the entry
    return staging


def _check(finished: sandboxed.Finished, what: str) -> None:
    if finished.status != 0:
        lines = [line.strip() for line in finished.stderr.splitlines() if line.strip()]
        raise InstallError(f"{what} (status {finished.status}): {'; '.join(lines[-3:]) or 'no message'}")


def _settle(staging: str, entry: Installed) -> Installed:
    """Move a finished staging directory to its entry; an entry another install completed meanwhile wins."""
    _write_manifest(staging, entry)
    existing = read(entry.path)
    if existing is not None:
        return existing
    if os.path.exists(entry.path):
        shutil.rmtree(entry.path)
    os.makedirs(os.path.dirname(entry.path), exist_ok=True)
    os.rename(staging, entry.path)
    return entry


def _write_manifest(directory: str, entry: Installed) -> None:
    data = {key: value for key, value in entry._asdict().items() if key != "path"}
    with open(os.path.join(directory, MANIFEST), "w") as handle:
        json.dump(data, handle, indent=1)


# npm ------------------------------------------------------------------------------------------------------

def _npm(spec: Spec, lock: str | None) -> Installed:
    npm = _tool("npm")
    staging = _staging("npm")
    try:
        registry = npm_registry()
        options = [*NPM_OPTIONS, "--prefix", staging, *([f"--registry={registry}"] if registry else [])]
        if lock is not None:
            dependencies = json.loads(lock)["packages"][""]["dependencies"]
            _write(os.path.join(staging, "package.json"), json.dumps({"dependencies": dependencies}))
            _write(os.path.join(staging, "package-lock.json"), lock)
            argv = [npm, "ci", *options]
        else:
            argv = [npm, "install", "--save-exact", *options, spec.requirement]
        _check(sandboxed.run(argv, staging, [spec.package] if spec.local else []),
               f"npm could not install {spec.requirement}")
        with open(os.path.join(staging, "package-lock.json")) as handle:
            text = handle.read()
        lockfile = json.loads(text)
        (name,) = lockfile["packages"][""]["dependencies"]
        own = lockfile["packages"][f"node_modules/{name}"]
        entry = Installed("npm", name, own["version"], entry_path("npm", name, own["version"]),
                          own.get("integrity", ""), _npm_bins(staging, name), text, _npm_scripts(staging, lockfile))
        return _settle(staging, entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def npm_registry() -> str:
    """The registry the user's npm config names (the sandbox sees none of it), unless it carries credentials;
    "" for npm's default."""
    try:
        url = subprocess.run([_tool("npm"), "config", "get", "registry"], capture_output=True, text=True,
                             timeout=60, stdin=subprocess.DEVNULL).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return url if _plain_url(url) else ""


def _npm_bins(root: str, name: str) -> dict[str, str]:
    with open(os.path.join(root, "node_modules", name, "package.json")) as handle:
        declared = json.load(handle).get("bin") or {}
    if isinstance(declared, str):
        declared = {name.rsplit("/", 1)[-1]: declared}
    return {bin_name: os.path.join("node_modules", ".bin", bin_name) for bin_name in declared}


def _npm_scripts(root: str, lockfile: dict) -> tuple[str, ...]:
    """Each package that wanted a lifecycle script at install, and which (npm marks them in the lockfile)."""
    wanted: list[str] = []
    for location, package in lockfile["packages"].items():
        if not location or not package.get("hasInstallScript"):
            continue
        try:
            with open(os.path.join(root, location, "package.json")) as handle:
                scripts = json.load(handle).get("scripts") or {}
        except (OSError, ValueError):
            scripts = {}
        which = [name for name in LIFECYCLE if name in scripts] or ["install: node-gyp rebuild"]
        wanted.append(f"{location.rsplit('node_modules/', 1)[-1]} ({', '.join(which)})")
    return tuple(wanted)


# PyPI -----------------------------------------------------------------------------------------------------

def _pypi(spec: Spec, lock: str | None) -> Installed:
    installer = _installer()
    index, readable = pip_index()
    if lock is None:
        staging = _staging("pypi")
        try:
            report = os.path.join(staging, "report.json")
            _check(sandboxed.run([installer, "-m", "pip", "install", *PIP_OPTIONS, "--dry-run", "--ignore-installed",
                                  "--report", report, *index, spec.requirement], staging, readable),
                   f"pip could not resolve {spec.requirement}")
            with open(report) as handle:
                lock = _requirements(json.load(handle))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    version, integrity = _pinned_line(lock, spec.package)
    path = entry_path("pypi", spec.package, version)
    existing = read(path)
    if existing is not None:
        return existing
    if os.path.exists(path):
        shutil.rmtree(path)
    os.makedirs(path, mode=0o755)
    try:
        requirements = os.path.join(path, "requirements.txt")
        _write(requirements, lock)
        venv = os.path.join(path, "venv")
        _check(sandboxed.run([_base_python(), "-m", "venv", "--without-pip", venv], path, network=False),
               f"cannot make a venv for {spec.package}")
        _check(sandboxed.run([installer, "-m", "pip", "--python", os.path.join(venv, "bin", "python"), "install",
                              *PIP_OPTIONS, "--require-hashes", "--no-deps", "-r", requirements, *index],
                             path, readable),
               f"pip could not install {spec.package}=={version}")
        entry = Installed("pypi", spec.package, version, path, integrity, _console_scripts(venv, spec.package), lock)
        _write_manifest(path, entry)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return entry


def _installer() -> str:
    """A venv holding pip, shared by all PyPI installs (the entries' own venvs get none), made once."""
    venv = os.path.join(paths.servers_dir(), "pypi", ".installer")
    python = os.path.join(venv, "bin", "python")
    if os.path.exists(os.path.join(venv, "bin", "pip")):
        return python
    shutil.rmtree(venv, ignore_errors=True)
    os.makedirs(venv, mode=0o755)
    _check(sandboxed.run([_base_python(), "-m", "venv", venv], venv, network=False),
           "cannot make the PyPI installer's venv (Debian: apt-get install python3-venv)")
    return python


def _base_python() -> str:
    """The interpreter mcpbox runs on, outside any venv: every entry's venv is based on it."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _requirements(report: dict) -> str:
    """pip's resolution as a requirements file with the hash of every file: `--require-hashes` input."""
    lines = []
    for item in report["install"]:
        metadata = item["metadata"]
        hashes = item.get("download_info", {}).get("archive_info", {}).get("hashes")
        if not hashes:
            raise InstallError(f"pip resolved {metadata['name']} to something without a hash (not an index file)")
        hashed = " ".join(f"--hash={kind}:{value}" for kind, value in sorted(hashes.items()))
        lines.append(f"{normalize(metadata['name'])}=={metadata['version']} {hashed}")
    return "\n".join(sorted(lines)) + "\n"


def _pinned_line(requirements: str, package: str) -> tuple[str, str]:
    """The version and hash a requirements file pins `package` to."""
    for line in requirements.splitlines():
        requirement, *hashes = line.split()
        name, _, version = requirement.partition("==")
        if name == package:
            return version, hashes[0].removeprefix("--hash=") if hashes else ""
    raise InstallError(f"pip's resolution does not hold {package}")


def pip_index() -> tuple[list[str], list[str]]:
    """The index URLs (and CA file) of the user's pip config, as pip options, and the file to bind for them.

    pip in the sandbox is isolated from every config; only these settings are carried over, and an URL that
    holds credentials or names a host path is left out."""
    import configparser

    parser = configparser.RawConfigParser()
    config = os.path.join(os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "pip", "pip.conf")
    parser.read(["/etc/xdg/pip/pip.conf", "/etc/pip.conf", os.path.expanduser("~/.pip/pip.conf"), config,
                 os.environ.get("PIP_CONFIG_FILE", "")])
    settings: dict[str, str] = {}
    for section in ("global", "install"):
        if parser.has_section(section):
            settings.update({key: value for key, value in parser.items(section)
                             if key in ("index-url", "extra-index-url", "cert")})
    for key in ("index-url", "extra-index-url", "cert"):
        value = os.environ.get("PIP_" + key.upper().replace("-", "_"))
        if value:
            settings[key] = value
    options: list[str] = []
    if _plain_url(settings.get("index-url", "")):
        options += ["--index-url", settings["index-url"]]
    for url in settings.get("extra-index-url", "").split():
        if _plain_url(url):
            options += ["--extra-index-url", url]
    cert = settings.get("cert", "")
    if cert and os.path.isfile(cert):
        return [*options, "--cert", cert], [cert]
    return options, []


def _plain_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.username


def _console_scripts(venv: str, package: str) -> dict[str, str]:
    import configparser
    import glob

    for info in glob.glob(os.path.join(venv, "lib", "python*", "site-packages", "*.dist-info")):
        if normalize(os.path.basename(info).split("-", 1)[0]) != package:
            continue
        parser = configparser.RawConfigParser(delimiters=("=",))
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(os.path.join(info, "entry_points.txt"))
        if parser.has_section("console_scripts"):
            return {name: os.path.join("venv", "bin", name) for name in parser.options("console_scripts")}
    return {}


def _tool(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + "/usr/local/bin:/usr/bin:/bin")
    if found is None:
        raise InstallError(f"{name} is not installed here; mcpbox needs it to install npm packages into its store")
    return found


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)
