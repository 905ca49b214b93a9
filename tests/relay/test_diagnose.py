"""The diagnosis of a server that ended or stalled before answering: what it said, and what it lacked.

Pure: each case is stderr as real runtimes write it (node 20/22, CPython 3.11, npm 10, uv, dash),
captured from servers that failed inside mcpbox's sandbox, with the facts of that sandbox.
"""

from __future__ import annotations

from mcpbox.relay.diagnose import Diagnosis, Facts, explain

PROFILE = "/home/u/.config/mcpbox/profiles/p.toml"
SYSTEM_BINDS = [("/usr", False), ("/etc/ld.so.cache", False), ("/work/venv", False)]
ON_HOST = {"/home/u/mcp/lib/mod.js", "/home/u/mcp/lib", "/home/u/data", "/srv/shared/notes.txt", "/srv/shared"}


def facts(argv: list[str] | None = None, *, binds=(), env=(), env_listed=(), network=False,
          host: set[str] = ON_HOST, commands: dict[str, str] | None = None) -> Facts:
    return Facts(argv=argv or ["/usr/bin/node", "/work/server.js"], binds=[*SYSTEM_BINDS, *binds],
                 env=("PATH", "HOME", *env), env_listed=env_listed, network=network, profile=PROFILE,
                 exists=host.__contains__, locate=(commands or {}).get)


NODE_MODULE = """\
node:internal/modules/cjs/loader:1228
  throw err;
  ^

Error: Cannot find module '/home/u/mcp/lib/mod.js'
Require stack:
- /home/u/[eval]
    at Module._resolveFilename (node:internal/modules/cjs/loader:1225:15)
    at Module._load (node:internal/modules/cjs/loader:1051:27)
    at node:internal/main/run_main_module:28:49 {
  code: 'MODULE_NOT_FOUND',
  requireStack: [ '/home/u/[eval]' ]
}

Node.js v20.20.2""".splitlines()

NODE_ENOENT = """\
node:fs:573
  return binding.open(
                 ^

Error: ENOENT: no such file or directory, open '/srv/shared/notes.txt'
    at Object.openSync (node:fs:573:18)
    at Object.readFileSync (node:fs:452:35)
    at [eval]:1:15 {
  errno: -2,
  code: 'ENOENT',
  syscall: 'open',
  path: '/srv/shared/notes.txt'
}

Node.js v20.20.2""".splitlines()

PYTHON_ENV = """\
Traceback (most recent call last):
  File "/work/server.py", line 4, in <module>
    TOKEN = os.environ["NEEDED_TOKEN"]
            ~~~~~~~~~~^^^^^^^^^^^^^^^^
  File "<frozen os>", line 679, in __getitem__
KeyError: 'NEEDED_TOKEN'""".splitlines()

PYTHON_DNS = """\
Traceback (most recent call last):
  File "<string>", line 1, in <module>
  File "/root/.pyenv/versions/3.11.7/lib/python3.11/socket.py", line 962, in getaddrinfo
    for res in _socket.getaddrinfo(host, port, family, type, proto, flags):
               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
socket.gaierror: [Errno -3] Temporary failure in name resolution""".splitlines()

NODE_FETCH = """\
TypeError: fetch failed
    at node:internal/deps/undici/undici:14976:13
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5) {
  [cause]: Error: getaddrinfo EAI_AGAIN api.example.com
      at GetAddrInfoReqWrap.onlookupall [as oncomplete] (node:dns:122:26) {
    errno: -3001,
    code: 'EAI_AGAIN',
    syscall: 'getaddrinfo',
    hostname: 'api.example.com'
  }
}""".splitlines()

NPM_OFFLINE = """\
npm error code EAI_AGAIN
npm error syscall getaddrinfo
npm error errno EAI_AGAIN
npm error request to https://registry.npmjs.org/@modelcontextprotocol%2fserver-memory failed, reason: \
getaddrinfo EAI_AGAIN registry.npmjs.org
npm error A complete log of this run can be found in: /home/u/.npm/_logs/2026-12-04T20_48_59_895Z-debug-0.log\
""".splitlines()

UV_OFFLINE = """\
error: Failed to fetch: `https://pypi.org/simple/mcp-server-time/`
  Caused by: Request failed after 3 retries
  Caused by: error sending request for url (https://pypi.org/simple/mcp-server-time/)
  Caused by: client error (Connect)
  Caused by: dns error: failed to lookup address information: Temporary failure in name resolution\
""".splitlines()


def test_module_outside_the_binds_is_named_with_where_to_grant_it() -> None:
    found = explain(NODE_MODULE, 1, facts())
    assert found.seen == ("the server exited (status 1) before answering: "
                          "Error: Cannot find module '/home/u/mcp/lib/mod.js'")
    assert found.hint is not None
    assert found.hint.startswith("/home/u/mcp/lib/mod.js is outside the sandbox's binds: add it to read_only "
                                 f"under [sandbox] in {PROFILE}")
    assert found.message() == f"mcpbox: {found.seen} — {found.hint}"
    assert found.lines() == [found.seen, found.hint]


def test_a_file_inside_a_bind_or_missing_on_the_host_too_gets_no_bind_hint() -> None:
    inside = explain(NODE_MODULE, 1, facts(binds=[("/home/u/mcp", False)]))
    assert inside.hint is None and "Cannot find module" in inside.seen
    missing = explain(NODE_MODULE, 1, facts(host=set()))
    assert missing.hint is None


def test_node_enoent_names_the_path_not_the_error_object_lines() -> None:
    found = explain(NODE_ENOENT, 1, facts())
    assert found.seen.endswith(": Error: ENOENT: no such file or directory, open '/srv/shared/notes.txt'")
    assert found.hint is not None and found.hint.startswith("/srv/shared/notes.txt is outside the sandbox's binds")


def test_a_file_to_be_made_in_a_folder_outside_the_binds_names_the_folder() -> None:
    lines = ["FileNotFoundError: [Errno 2] No such file or directory: '/home/u/data/memory.json'"]
    found = explain(lines, 1, facts())
    assert found.hint is not None and found.hint.startswith("/home/u/data is outside the sandbox's binds")


def test_python_environ_key_error_names_the_variable_to_pass() -> None:
    found = explain(PYTHON_ENV, 1, facts())
    assert found.seen == "the server exited (status 1) before answering: KeyError: 'NEEDED_TOKEN'"
    assert found.hint == ("the sandbox gets only the variables its profile names, with their values from mcpbox's "
                          f"environment: add \"NEEDED_TOKEN\" to env under [sandbox] in {PROFILE}")


def test_a_variable_listed_but_unset_in_mcpbox_is_told_apart() -> None:
    found = explain(PYTHON_ENV, 1, facts(env_listed=["NEEDED_TOKEN"]))
    assert found.hint is not None and found.hint.startswith("NEEDED_TOKEN is passed by [sandbox] env")
    assert "mcpbox's environment does not have it" in found.hint


def test_a_variable_the_server_got_is_not_blamed() -> None:
    assert explain(PYTHON_ENV, 1, facts(env=["NEEDED_TOKEN"], env_listed=["NEEDED_TOKEN"])).hint is None


def test_a_key_error_of_a_plain_dict_is_not_an_environment_variable() -> None:
    lines = ["Traceback (most recent call last):", '  File "/work/server.py", line 9, in <module>',
             "    config['ID']", "KeyError: 'ID'"]
    assert explain(lines, 1, facts()).hint is None


def test_servers_own_words_for_a_missing_variable() -> None:
    said = {
        "Error: BRAVE_API_KEY environment variable is required": "BRAVE_API_KEY",
        "GITHUB_PERSONAL_ACCESS_TOKEN environment variable is not set": "GITHUB_PERSONAL_ACCESS_TOKEN",
        "Please set SLACK_BOT_TOKEN and SLACK_TEAM_ID environment variables": "SLACK_BOT_TOKEN",
        "ValueError: Missing required environment variable: OPENAI_API_KEY": "OPENAI_API_KEY",
        "Error: TOKEN must be set (environment variable TOKEN)": "TOKEN",
        "RuntimeError: DATABASE_URL is not set": "DATABASE_URL",
    }
    for line, name in said.items():
        found = explain([line], 1, facts())
        assert found.hint is not None and f'add "{name}" to env' in found.hint, line


def test_error_codes_are_not_taken_for_variables() -> None:
    for line in ["Error: ERR_MODULE_NOT_FOUND is required here", "EACCES must be set"]:
        hint = explain([line], 1, facts()).hint
        assert hint is None or "to env" not in hint, line


def test_name_lookup_inside_the_sandbox_is_the_missing_network() -> None:
    found = explain(PYTHON_DNS, 1, facts())
    assert found.seen.endswith(": socket.gaierror: [Errno -3] Temporary failure in name resolution")
    assert found.hint == ("the sandbox has no network: a server that must reach it needs network = true under "
                          f"[sandbox] in {PROFILE}")


def test_node_fetch_failure_quotes_its_first_line() -> None:
    found = explain(NODE_FETCH, 1, facts())
    assert found.seen.endswith(": TypeError: fetch failed")
    assert found.hint is not None and "no network" in found.hint


def test_with_network_granted_a_network_error_is_the_servers_own() -> None:
    found = explain(PYTHON_DNS, 1, facts(network=True))
    assert found.hint is None and found.seen.endswith("Temporary failure in name resolution")


def test_npx_through_a_shell_is_told_to_run_from_the_store() -> None:
    argv = ["/bin/sh", "-c", "npx -y @modelcontextprotocol/server-memory"]
    found = explain(NPM_OFFLINE, 1, facts(argv))
    assert found.seen.endswith("reason: getaddrinfo EAI_AGAIN registry.npmjs.org")
    assert found.hint is not None
    assert found.hint.startswith("npx fetches @modelcontextprotocol/server-memory over the network")
    assert "give mcpbox `npx -y @modelcontextprotocol/server-memory` itself as the command" in found.hint
    assert "mcpbox install npm:@modelcontextprotocol/server-memory" in found.hint


def test_a_stalled_npx_with_nothing_on_stderr_gets_the_same_hint() -> None:
    found = explain([], None, facts(["/usr/bin/env", "uvx", "--from", "mcp-server-time", "mcp-server-time"]),
                    stalled_after=30)
    assert found.seen == "the server answered nothing within 30 s; it wrote nothing on stderr"
    assert found.hint is not None and "give mcpbox `uvx mcp-server-time` itself" in found.hint


def test_package_managers_offline_without_a_launcher_in_the_command() -> None:
    for lines in (NPM_OFFLINE, UV_OFFLINE):
        found = explain(lines, 1, facts(["/opt/tool/bin/server"]))
        assert found.hint is not None and found.hint.startswith("a package manager tried to fetch"), lines
    assert explain(UV_OFFLINE, 1, facts()).seen.endswith("error: Failed to fetch: `https://pypi.org/simple/"
                                                         "mcp-server-time/`")


def test_command_not_found_in_the_sandbox() -> None:
    found = explain(["/bin/sh: 1: mytool: not found"], 127,
                    facts(["/bin/sh", "-c", "mytool --serve"], commands={"mytool": "/opt/tools/bin/mytool"}))
    assert found.seen == "the server exited (status 127) before answering: /bin/sh: 1: mytool: not found"
    assert found.hint is not None and found.hint.startswith("mytool (on the host: /opt/tools/bin/mytool) is not "
                                                            "inside the sandbox")
    spawned = explain(["Error: spawn uvx ENOENT"], 1, facts())
    assert spawned.hint is not None and spawned.hint.startswith("uvx is not inside the sandbox")
    python = explain(["FileNotFoundError: [Errno 2] No such file or directory: 'npx'"], 1, facts())
    assert python.hint is not None and python.hint.startswith("npx is not inside the sandbox")


def test_status_127_alone_says_a_command_was_missing() -> None:
    found = explain([], 127, facts())
    assert found.hint is not None and found.hint.startswith("status 127: a command was not found")


def test_writing_into_a_read_only_bind() -> None:
    lines = ["Error: EROFS: read-only file system, open '/srv/shared/notes.txt'"]
    found = explain(lines, 1, facts(binds=[("/srv/shared", False)]))
    assert found.hint == (f"/srv/shared/notes.txt is bound read-only: name /srv/shared under read_write in "
                          f"[sandbox] of {PROFILE} if the server must write there")
    assert explain(lines, 1, facts(binds=[("/srv/shared", True)])).hint is None
    system = explain(["OSError: [Errno 30] Read-only file system: '/usr/x'"], 1, facts())
    assert system.hint is not None and system.hint.startswith("/usr/x is in a system folder, read-only")


def test_headlines_for_each_way_of_ending() -> None:
    assert explain([], 137, facts()).seen == ("the server was killed by SIGKILL (status 137) before answering; "
                                              "it wrote nothing on stderr")
    assert explain([], 0, facts()).seen == "the server exited (status 0) before answering; it wrote nothing on stderr"
    assert explain(["  "], None, facts()).seen == ("the server closed its stdout before answering; "
                                                   "it wrote nothing on stderr")


def test_quoted_line_is_the_last_error_not_trailing_noise() -> None:
    lines = ["Starting server v1.2", "Loading config", "Fatal: config file has no [server] table",
             "    at load (/work/config.js:10:3)", "", "Node.js v22.23.3"]
    assert explain(lines, 1, facts()).seen.endswith(": Fatal: config file has no [server] table")
    assert explain(["listening..."], None, facts(), 5).seen == "the server answered nothing within 5 s: listening..."


def test_message_is_one_bounded_line() -> None:
    found = explain(["Error: " + "x" * 5000 + "\tend"], 1, facts())
    message = found.message()
    assert "\n" not in message and "\t" not in message
    assert len(found.seen) < 300 and found.seen.endswith("…")


def test_latest_recognized_line_wins() -> None:
    """An early warning about telemetry does not hide the error the server died of."""
    lines = ["warning: telemetry disabled (getaddrinfo ENOTFOUND telemetry.example)", *PYTHON_ENV]
    found = explain(lines, 1, facts())
    assert found.hint is not None and "NEEDED_TOKEN" in found.hint


def test_diagnosis_of_nothing_recognized() -> None:
    assert explain(["Segmentation fault"], 139, facts()) == Diagnosis(
        "the server was killed by SIGSEGV (status 139) before answering: Segmentation fault", None)
