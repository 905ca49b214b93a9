"""`npx`/`uvx` command lines as the package they run: what mcpbox installs and which bin it starts."""

from __future__ import annotations

import pytest

from mcpbox.errors import UsageError
from mcpbox.store.errors import InstallError
from mcpbox.store.install import Installed
from mcpbox.store.spec import Spec, parse


@pytest.mark.parametrize(("argv", "expected", "requirement", "exact"), [
    (["npx", "-y", "@modelcontextprotocol/server-filesystem", "/srv"],
     Spec("npm", "@modelcontextprotocol/server-filesystem", "", None, ("/srv",)),
     "@modelcontextprotocol/server-filesystem", None),
    (["/usr/bin/npx", "--yes", "pkg@1.2.3", "-y"], Spec("npm", "pkg", "1.2.3", None, ("-y",)), "pkg@1.2.3", "1.2.3"),
    (["npx", "@scope/pkg@latest"], Spec("npm", "@scope/pkg", "", None), "@scope/pkg", None),
    (["npx", "-y", "--package", "@a/b@^1", "tool", "x"], Spec("npm", "@a/b", "^1", "tool", ("x",)), "@a/b@^1", None),
    (["npx", "--package=c", "tool"], Spec("npm", "c", "", "tool"), "c", None),
    (["uvx", "mcp-server-time", "--local-timezone=UTC"],
     Spec("pypi", "mcp-server-time", "", "mcp-server-time", ("--local-timezone=UTC",)), "mcp-server-time", None),
    (["uvx", "--from", "Mcp_Server.Time[cli]==1.0", "mcp-server-time"],
     Spec("pypi", "mcp-server-time", "==1.0", "mcp-server-time", (), "[cli]"), "mcp-server-time[cli]==1.0", "1.0"),
    (["uvx", "mcp-server-time@2026.10.19"], Spec("pypi", "mcp-server-time", "==2026.10.19", "mcp-server-time"),
     "mcp-server-time==2026.10.19", "2026.10.19"),
    (["uvx", "tool>=2,<3"], Spec("pypi", "tool", ">=2,<3", "tool"), "tool>=2,<3", None),
])
def test_a_runner_line_is_the_package_its_version_its_bin_and_the_server_args(
        argv: list[str], expected: Spec, requirement: str, exact: str | None) -> None:
    spec = parse(argv)
    assert spec == expected and spec.requirement == requirement and spec.exact == exact


@pytest.mark.parametrize("argv", [
    ["npx", "-c", "echo hi"], ["npx", "-y"], ["npx", "-p", "a", "-p", "b", "tool"], ["npx", "a/b/c"],
    ["uvx", "--with", "extra", "tool"], ["uvx", "--python", "3.12", "tool"], ["uvx", "tool; os_name=='nt'"],
    ["uvx", "git+https://example.invalid/x"], ["uvx"],
])
def test_what_the_store_cannot_reproduce_is_refused_with_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse(argv)


def test_the_bin_is_the_only_one_or_the_one_named_after_the_package() -> None:
    one = Installed("npm", "@s/server-x", "1.0.0", "/store/x", "", {"x-server": "node_modules/.bin/x-server"}, "")
    assert one.executable(None) == "/store/x/node_modules/.bin/x-server"
    two = one._replace(bins={"server-x": "node_modules/.bin/server-x", "other": "node_modules/.bin/other"})
    assert two.executable(None) == "/store/x/node_modules/.bin/server-x"
    assert two.executable("other") == "/store/x/node_modules/.bin/other"
    with pytest.raises(InstallError, match="has no executable 'missing'"):
        two.executable("missing")
