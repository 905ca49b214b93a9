"""The steps of an end-to-end test, run by whoever runs this script: root, or the unprivileged user of
tests/unprivileged.py, with the environment it was handed (its HOME, XDG dirs and PATH).

Reads a JSON list of steps on stdin; prints one JSON line: a list with the result of each step, up to the
first that failed (its result then holds "error"). Steps:

  {"write": PATH, "text": TEXT}        a file and its folders, made by this user (its umask, its owner)
  {"read": PATH}                       -> {"text": the file's text, or null}
  {"mcpbox": [ARG, ...]}               `python -m mcpbox ARG...` -> {"status", "out", "err"}
  {"entry": NAME, "config": PATH, "calls": [[TOOL, ARGUMENTS], ...], "env": {...}, "timeout": SECONDS}
                                       the config's mcpServers[NAME] started as Claude Desktop starts it,
                                       with the `mcp` SDK (conftest.run_client_entry) and `env`
                                       -> {"tools", "results": [{"is_error", "text"}], "stderr"}
  {"pins": true}                       the store's pins -> [{"name", "package", "version", "installed"}]
  {"run": [ARG, ...], "cwd": PATH}     a program as this user, as from its shell (its environment; "cwd"
                                       optional) -> {"status", "out", "err"}
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

from conftest import run_client_entry


def text(result: Any) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)


def step(item: dict[str, Any]) -> Any:
    if "write" in item:
        path = Path(item["write"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(item["text"])
        return {}
    if "read" in item:
        path = Path(item["read"])
        return {"text": path.read_text() if path.exists() else None}
    if "mcpbox" in item:
        done = subprocess.run([sys.executable, "-m", "mcpbox", *item["mcpbox"]], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=item.get("timeout", 600))
        return {"status": done.returncode, "out": done.stdout, "err": done.stderr}
    if "entry" in item:
        entry = json.loads(Path(item["config"]).read_text())["mcpServers"][item["entry"]]
        errlog = Path(f"{item['entry']}.stderr").absolute()
        calls = [(tool, arguments) for tool, arguments in item["calls"]]
        try:
            tools, results = asyncio.run(asyncio.wait_for(run_client_entry(entry, item["env"], calls, errlog),
                                                          item.get("timeout", 60)))
        except BaseException as error:
            stderr = errlog.read_text() if errlog.exists() else ""
            raise RuntimeError(f"{error!r}; the entry's stderr:\n{stderr}") from error
        return {"tools": tools, "results": [{"is_error": bool(result.is_error), "text": text(result)}
                                            for result in results], "stderr": errlog.read_text()}
    if "pins" in item:
        from mcpbox.store import install, pins

        return [{"name": pin.name, "package": pin.package, "version": pin.version,
                 "installed": install.read(install.entry_path(pin.ecosystem, pin.name, pin.version)) is not None}
                for pin in pins.every()]
    if "run" in item:
        done = subprocess.run(item["run"], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              cwd=item.get("cwd"), timeout=item.get("timeout", 120))
        return {"status": done.returncode, "out": done.stdout, "err": done.stderr}
    raise ValueError(f"unknown step {item}")


def main() -> None:
    # Ended by the test (out of time): leave through the SDK's exits, which end the servers it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: list[Any] = []
    for item in json.load(sys.stdin):
        try:
            results.append(step(item))
        except BaseException:  # noqa: BLE001 - told to the test, which fails with it
            results.append({"error": traceback.format_exc()})
            break
    print(json.dumps(results))


if __name__ == "__main__":
    main()
