"""The sandbox layout as bwrap arguments: what is mounted, in which order, with what environment."""

from __future__ import annotations

from mcpbox.profile import Profile, Sandbox
from mcpbox.sandbox.layout import Bind, BwrapFds, HostFacts, SandboxUser, bwrap_args, plan
from mcpbox.sandbox.resolve import Command, Needs

USER = SandboxUser(1000, 1000, "alice", "/home/alice", fresh=False)
FACTS = HostFacts(
    cwd="/home/alice/work",
    environ={"LANG": "C.UTF-8", "SECRET_TOKEN": "canary", "PATH": "/usr/bin"},
    system_dirs={"bin": "usr/bin", "lib": "usr/lib"},
    etc={"ld.so.cache": None, "localtime": "/usr/share/zoneinfo/UTC"},
)


def argv_for(sandbox: Sandbox, needs: Needs | None = None) -> list[str]:
    command = Command(["/opt/srv/bin/server", "--flag"], needs or Needs(binds=["/opt/srv"]))
    layout = plan(Profile(sandbox=sandbox), command, FACTS, USER)
    fds = BwrapFds(seccomp=10, info=11, block=12, files=list(range(20, 20 + len(layout.files))))
    return bwrap_args(layout, fds)


def pairs(argv: list[str], option: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, word in enumerate(argv) if word == option]


def test_isolation_options_are_always_there() -> None:
    argv = argv_for(Sandbox())
    for option in ("--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
                   "--new-session"):
        assert option in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert "--share-net" not in argv
    assert "--" not in argv and "/opt/srv/bin/server" not in argv, "the command follows the options"


def test_no_environment_value_is_an_option() -> None:
    """bwrap's argv is readable inside the sandbox: the environment goes as bwrap's own, not as --setenv."""
    argv = argv_for(Sandbox(env=["LANG", "SECRET_TOKEN"]))
    assert "--setenv" not in argv and "canary" not in argv


def test_tmpfs_home_comes_before_binds_inside_it() -> None:
    argv = argv_for(Sandbox(read_write=["~/work"]), Needs(binds=["/opt/srv"]))
    home_tmpfs = argv.index("/home/alice", argv.index("--tmpfs"))
    work_bind = argv.index("--bind")
    assert argv[work_bind + 2] == "/home/alice/work" or argv[work_bind + 2].endswith("/work")
    assert home_tmpfs < work_bind


def test_only_runtime_and_granted_paths_are_bound() -> None:
    argv = argv_for(Sandbox(read_only=["/data"]))
    bound = {dest for _, dest in pairs(argv, "--ro-bind")} | {dest for _, dest in pairs(argv, "--bind")}
    assert bound == {"/usr", "/etc/ld.so.cache", "/opt/srv", "/data"}
    assert ("/usr/share/zoneinfo/UTC", "/etc/localtime") in pairs(argv, "--symlink")


def test_host_cwd_is_not_the_working_directory_unless_granted() -> None:
    argv = argv_for(Sandbox())
    assert argv[argv.index("--chdir") + 1] == "/home/alice"
    granted = argv_for(Sandbox(read_only=["."]))
    assert argv[argv.index("--chdir") + 1] == "/home/alice"
    assert granted[granted.index("--chdir") + 1] == "/home/alice/work"
    assert ("/home/alice/work", "/home/alice/work") in pairs(granted, "--ro-bind")


def test_environment_is_fresh_plus_listed_names() -> None:
    command = Command(["/opt/srv/bin/server"], Needs(binds=["/opt/srv"]))
    env = plan(Profile(sandbox=Sandbox(env=["LANG", "NOT_SET"])), command, FACTS, USER).env
    assert env["LANG"] == "C.UTF-8"
    assert "SECRET_TOKEN" not in env and "NOT_SET" not in env
    assert env["HOME"] == "/home/alice" and env["TMPDIR"] == "/tmp"
    assert env["PATH"].startswith("/usr/local/bin:")
    assert env["npm_config_cache"].startswith("/home/alice/")


def test_network_shares_the_host_network_with_resolver_files() -> None:
    argv = argv_for(Sandbox(network=True))
    assert "--share-net" in argv
    generated = {dest for _, dest in pairs(argv, "--ro-bind-data")}
    assert "/etc/hosts" not in generated, "with network the host's /etc/hosts is bound instead"
    assert "/etc/hosts" in {dest for _, dest in pairs(argv_for(Sandbox()), "--ro-bind-data")}


def test_writable_wins_when_a_path_is_granted_twice() -> None:
    argv = argv_for(Sandbox(read_only=["/data"], read_write=["/data"]))
    assert ("/data", "/data") in pairs(argv, "--bind")
    assert ("/data", "/data") not in pairs(argv, "--ro-bind")


def test_a_verified_copy_is_bound_read_only_and_no_original_bind_inside_it_survives() -> None:
    """A bind from the original at or below a verified path would shadow the verified copy."""
    needs = Needs(binds=["/opt/srv", "/opt/srv/bin/server", "/opt/other"])
    command = Command(["/opt/srv/bin/server"], needs)
    profile = Profile(sandbox=Sandbox(read_only=["/opt/srv/lib"], read_write=["/opt/srv", "/opt"]))
    verified = [Bind("/cache/store/trees/abc", "/opt/srv", writable=True)]
    layout = plan(profile, command, FACTS, USER, verified)
    fds = BwrapFds(seccomp=10, info=11, block=12, files=list(range(20, 20 + len(layout.files))))
    argv = bwrap_args(layout, fds)
    at_srv = [(o, s) for o, s, d in zip(argv, argv[1:], argv[2:]) if o in ("--bind", "--ro-bind") and
              (d == "/opt/srv" or d.startswith("/opt/srv/"))]
    assert at_srv == [("--ro-bind", "/cache/store/trees/abc")]
    binds = pairs(argv, "--ro-bind") + pairs(argv, "--bind")
    assert ("/opt/other", "/opt/other") in binds and ("/opt", "/opt") in pairs(argv, "--bind")
    assert argv.index("/opt") < argv.index("/cache/store/trees/abc"), "the parent is mounted first"
