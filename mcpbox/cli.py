"""The command line: one function per subcommand, and the edge where errors become one line."""

from __future__ import annotations

import argparse
import os
import sys

from mcpbox import __version__
from mcpbox.errors import EXIT_INTERNAL, EXIT_USAGE, McpboxError, say

FIRST_USE = """\
first use: put mcpbox in front of every local server of your client, then restart the client
  mcpbox clients                  which clients' configs are on this machine
  mcpbox wrap claude --dry-run    show the change (claude-code, zed, cursor, vscode, windsurf, codex, gemini too)
  mcpbox wrap claude              do it; 'mcpbox unwrap claude' puts the entries back byte for byte

"""

EPILOG = """\
exit status of 'run': the server's own (also when the client went away), or
    2  the command line is wrong (no command, an unknown option)
   70  an internal error of mcpbox (please report it); the server was stopped
   74  mcpbox could not write to the client (its stdout failed); the server was stopped
  124  the server's signature or its package's provenance does not verify ([verify]); it was not started
  125  the profile is wrong
  126  this host cannot build the sandbox (see 'mcpbox doctor')
  127  the server's command was not found
  130  interrupted (SIGINT) before the relay began; the server was stopped or never started
  137  mcpbox stopped the server for crossing a limit (the reason is on stderr)

examples:
  mcpbox run -- /opt/mcp/venv/bin/mcp-server-time
  mcpbox run --profile filesystem -- ~/mcp/node_modules/.bin/mcp-server-filesystem ~/projects
  mcpbox run -- npx -y @modelcontextprotocol/server-memory    (installed and pinned on first use)
  mcpbox check filesystem
  mcpbox verify --profile my-signed-server
  mcpbox doctor
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcpbox",
        description="Run a local MCP server in a sandbox and relay its stdio, filtered by a profile.",
        epilog=FIRST_USE + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mcpbox {__version__}")
    commands = parser.add_subparsers(dest="subcommand", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run", help="start an MCP server in the sandbox and relay its stdio",
        description="Start COMMAND in the sandbox described by the profile and relay its stdin/stdout. "
                    "Put this in your MCP client's config in place of the server's command.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--profile", "-p", default="default", metavar="PROFILE",
                     help="a profile file, or a name looked up in ~/.config/mcpbox/profiles/ and then in "
                          "mcpbox's shipped profiles (default: %(default)s: no network, no host files, "
                          "sampling denied)")
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]",
                     help="the server to run; overrides the profile's [server] command")

    learn = commands.add_parser(
        "learn", help="run a session like 'run' and write a least-privilege profile from what it used",
        description="Run COMMAND exactly as 'run' does, in the base profile's sandbox and firewall (nothing is "
                    "granted that the base does not grant), then write to FILE a profile narrowed to what the "
                    "session used: the tools called, an argument glob per path argument, the resources read, "
                    "the prompts fetched, the client capabilities asked for, the limits' peaks with headroom, "
                    "and, when the base's network is a list of hosts, the hosts the server connected to (those "
                    "the base refused are named in comments, not granted; a base of network = true is kept, as "
                    "its connections cannot be observed); "
                    "a comment above each entry says what was observed. Put 'mcpbox learn --out FILE -- "
                    "COMMAND' in your client's config for one session, then review FILE and use it with run.")
    learn.add_argument("--profile", "-p", default="default", metavar="BASE", help="the profile to learn within")
    learn.add_argument("--out", "-o", required=True, metavar="FILE", help="where to write the profile (must not exist)")
    learn.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]")

    check = commands.add_parser("check", help="validate a profile and say what it grants",
                                description="Validate PROFILE and print, in plain words, what it grants.")
    check.add_argument("profile", metavar="PROFILE", help="a profile file or name")

    commands.add_parser("doctor", help="check that this host can build the sandbox",
                        description="Check bwrap, user namespaces, AppArmor, seccomp, Landlock and cgroups, "
                                    "and say which mechanism holds each limit on this host.")
    commands.add_parser("profiles", help="list the profiles mcpbox can find")
    commands.add_parser("schema", help="print the JSON Schema of a profile (for Taplo / Even Better TOML)",
                        description="Print the JSON Schema of a profile, generated from the validator mcpbox uses. "
                                    "The shipped profiles name a copy of it on their first line: "
                                    "'#:schema ./profile.schema.json'.")
    _add_log_command(commands)
    _add_client_commands(commands)
    _add_store_commands(commands)

    verify = commands.add_parser(
        "verify", help="check a profile's [verify] signature without starting the server",
        description="Verify the profile's [verify] artifact against its sigstore bundle and signer policy, "
                    "offline, as 'run' would. Prints the signer, the log time and the sha256 and exits 0; "
                    "exits 1 with the reason when it does not verify. With [verify] provenance, checks the npx/uvx "
                    "packages pinned under the profile against their registry's attestations afresh (online).")
    verify.add_argument("--profile", "-p", required=True, metavar="PROFILE", help="a profile file or name")
    trust = commands.add_parser(
        "trust", help="manage the Sigstore trust root",
        description="'trust update' fetches the current Sigstore public-good trust root through sigstore's TUF "
                    "client (online) and keeps it for verification; without it mcpbox uses the root it ships.")
    trust.add_argument("action", choices=["update"])

    pins = commands.add_parser(
        "pins", help="see and accept the changes servers made to their pinned tool definitions",
        description="mcpbox pins the first definition it sees of every tool, prompt and resource template, and "
                    "the server's instructions, per profile and command. A later change hides that item until "
                    "you accept it. 'pins list' shows every server's pins and its changed items, 'pins diff "
                    "SERVER' what changed, 'pins accept SERVER [ITEM]' pins the change; 'pins reset' forgets "
                    "all pins of one server so that the next run pins what it says then.")
    pins.add_argument("--profile", "-p", default="default", metavar="PROFILE")
    actions = pins.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="every server's pins, and the items it changed")
    diff = actions.add_parser("diff", help="what a server changed: old and new definitions, text as a diff")
    diff.add_argument("server", metavar="SERVER", help="as 'pins list' names it (PROFILE@KEY), or its profile")
    accept = actions.add_parser("accept", help="pin a server's changed definitions (all, or one ITEM)")
    accept.add_argument("server", metavar="SERVER", help="as 'pins list' names it (PROFILE@KEY)")
    accept.add_argument("item", nargs="?", metavar="ITEM", help="KIND:NAME or NAME (default: every change)")
    reset = actions.add_parser("reset", help="forget the pins of one server (its profile and command)")
    # On `reset` too: `pins reset --profile P -- CMD` is the form mcpbox prints, and a REMAINDER right
    # after a positional would swallow the options.
    reset.add_argument("--profile", "-p", default=argparse.SUPPRESS, metavar="PROFILE")
    reset.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]")
    return parser


STORE_EPILOG = """\
'run -- npx [-y] [--package PKG] PKG[@VERSION] ARGS' and 'run -- uvx [--from PKG] PKG[==VERSION] ARGS' run the
package from mcpbox's store (~/.local/share/mcpbox/servers/), installed on first use and pinned per server
(profile and package): later runs need no network, and a new release changes nothing until 'mcpbox update'.
Installs run in mcpbox's sandbox: network, only the store entry writable, no home (no ~/.npmrc), npm with
--ignore-scripts (the packages whose install scripts were skipped are named), PyPI wheels pinned by hash.
A profile with [verify] provenance = "required" | "if-present" (and repository/workflow/ref/issuer) has the
package's npm provenance or PyPI PEP 740 attestations verified before it is pinned.

examples:
  mcpbox install npm:@modelcontextprotocol/server-memory pypi:mcp-server-time==2026.10.19
  mcpbox servers
  mcpbox update                        every pinned server to what its spec resolves to now
  mcpbox update claude-memory          one server, by its profile's or its package's name
"""


WRAP_EPILOG = """\
clients and the file each keeps its servers in (Linux; --config names another, e.g. a project's):
  claude       ~/.config/Claude/claude_desktop_config.json (macOS: ~/Library/Application Support/Claude/)
  claude-code  ~/.claude.json (user and local scopes; a project's .mcp.json with --config)
  zed          ~/.config/zed/settings.json        cursor    ~/.cursor/mcp.json
  vscode       ~/.config/Code/User/mcp.json        windsurf  ~/.codeium/windsurf/mcp_config.json
  codex        ~/.codex/config.toml                gemini    ~/.gemini/settings.json

Only stdio entries change: each runs as 'MCPBOX run --profile CLIENT-NAME -- /abs/COMMAND ARGS', with
its own profile in ~/.config/mcpbox/profiles/ (the shipped one that fits the server, else the default,
plus the entry's env names and the paths among its arguments; an existing profile is kept). Remote
entries, disabled flags, comments and every other byte stay as they are; a backup FILE.mcpbox-backup-TIME
is kept beside the file. Wrapping again changes nothing; unwrap puts the original entries back byte for byte.

exit status: 0 done (entries left as they are are listed with the reason); 2 unknown client or entry;
  125 the config cannot be read or parsed, or changed while mcpbox edited it: nothing was written

examples:
  mcpbox wrap claude --dry-run
  mcpbox wrap zed --only git filesystem
  mcpbox wrap claude-code --config ~/src/app/.mcp.json
  mcpbox unwrap claude
"""


def _add_client_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for action, summary in (("wrap", "put mcpbox in front of a client's local MCP servers"),
                            ("unwrap", "put a client's original server entries back")):
        command = commands.add_parser(
            action, help=summary, epilog=WRAP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
            description=summary[0].upper() + summary[1:] + ", editing only those entries of its config file.")
        command.add_argument("client", metavar="CLIENT", help="claude, claude-code, zed, cursor, vscode, windsurf, "
                                                              "codex or gemini")
        command.add_argument("--config", metavar="PATH", help="the config file (default: the client's own)")
        command.add_argument("--only", nargs="+", default=[], metavar="NAME", help="only these entries")
        command.add_argument("--dry-run", action="store_true", help="print the diff and the table; write nothing")
    commands.add_parser("clients", help="list the clients' configs on this machine and how many entries are wrapped")


LOG_EPILOG = """\
columns: time (local), server, direction (the side whose message the line decides on), method (or the event:
pin, egress, verify, provenance), item (tool, resource or prompt; host:port; package), decision, rule.

examples:
  mcpbox log --denied --since 1h
  mcpbox log --follow
  mcpbox log --json --since 2026-01-31T09:00 | jq .
"""


def _add_log_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    log = commands.add_parser(
        "log", help="show the audit log as a table", epilog=LOG_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Show mcpbox's audit log (~/.local/state/mcpbox/audit.jsonl and its rotated files) as a table, "
                    "oldest first.")
    log.add_argument("--follow", "-f", action="store_true", help="keep printing new lines as they come (like tail -F)")
    log.add_argument("--denied", action="store_true", help="only what was refused or failed: deny, drop, hide, error")
    log.add_argument("--server", metavar="NAME",
                     help="only the lines naming this server (a glob; also matches a package's name without its scope)")
    log.add_argument("--since", metavar="WHEN", help="only lines since WHEN: 30s, 10m, 2h, 1d, 1w ago, or an ISO time")
    log.add_argument("--lines", "-n", type=int, metavar="N",
                     help="only the last N lines that match (default: all; 10 with --follow)")
    log.add_argument("--json", action="store_true", help="the matching lines as they are in the log (JSON lines)")
    log.add_argument("--path", metavar="FILE", help="read this log instead ([audit] path of a profile)")


def _add_store_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    def add(name: str, summary: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".",
                                   epilog=STORE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)

    install = add("install", "install npm or PyPI servers into mcpbox's store ahead of their first run")
    install.add_argument("specs", nargs="+", metavar="SPEC",
                         help="npm:NAME[@VERSION] (a scoped @scope/name needs no prefix) or pypi:NAME[==VERSION]")
    add("servers", "list the servers installed in mcpbox's store and the version each server is pinned to")
    update = add("update", "move pinned npx/uvx servers to what their package spec resolves to now (online)")
    update.add_argument("name", nargs="?", metavar="NAME", help="only the servers of this profile or package")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except McpboxError as error:
        say(str(error))
        return error.exit_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `mcpbox profiles | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 0
    except Exception as error:  # the CLI edge: a person gets one line, a developer can ask for more
        if os.environ.get("MCPBOX_DEBUG"):
            raise
        say(f"internal error: {type(error).__name__}: {error} (set MCPBOX_DEBUG=1 for details, and please report it)")
        return EXIT_INTERNAL


def _dispatch(args: argparse.Namespace) -> int:
    if args.subcommand == "run":
        from mcpbox import launch

        return launch.run(args.profile, _command(args))
    if args.subcommand == "learn":
        from mcpbox import launch, learn
        from mcpbox import profile as profiles

        learner = learn.Learner(profiles.load(args.profile), os.path.abspath(os.path.expanduser(args.out)))
        status = launch.run(args.profile, _command(args), learner)
        say(f"learned profile written to {learner.write()}; check it with 'mcpbox check {learner.out}'")
        return status
    if args.subcommand == "check":
        from mcpbox import explain, profile

        loaded = profile.load(args.profile)
        print("\n".join(explain.describe(loaded)))
        return 0
    if args.subcommand == "doctor":
        from mcpbox import doctor

        return doctor.doctor()
    if args.subcommand == "pins":
        if args.action != "reset":
            from mcpbox import pinview

            return pinview.main(args.action, getattr(args, "server", None), getattr(args, "item", None))
        from mcpbox import launch

        return launch.reset_pins(args.profile, _command(args))
    if args.subcommand == "verify":
        from mcpbox.trust import verify

        return verify.report(args.profile)
    if args.subcommand == "trust":
        from mcpbox.trust import root

        print(root.update())
        return 0
    if args.subcommand in ("wrap", "unwrap"):
        from mcpbox.clients import wrap

        return wrap.run(args.subcommand, args.client, args.config, args.only, args.dry_run)
    if args.subcommand == "clients":
        from mcpbox.clients import wrap

        return wrap.clients()
    if args.subcommand in ("install", "servers", "update"):
        from mcpbox.store import commands

        if args.subcommand == "install":
            return commands.install_specs(args.specs)
        return commands.servers() if args.subcommand == "servers" else commands.update(args.name)
    if args.subcommand == "log":
        from mcpbox import logview

        return logview.main(args)
    if args.subcommand == "schema":
        from mcpbox import schema

        sys.stdout.write(schema.render())
        return 0
    if args.subcommand == "profiles":
        from mcpbox import explain

        print("\n".join(explain.list_profiles()))
        return 0
    return EXIT_USAGE


def _command(args: argparse.Namespace) -> list[str]:
    """The words after `--`: argparse's REMAINDER keeps the separator itself."""
    return args.command[1:] if args.command[:1] == ["--"] else args.command
