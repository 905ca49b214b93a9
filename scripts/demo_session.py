"""A real MCP client session with server-everything running under mcpbox (see scripts/demo)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / ".cache" / "servers" / "npm" / "node_modules" / ".bin" / "mcp-server-everything"


async def main() -> None:
    parameters = StdioServerParameters(
        command=str(ROOT / ".venv" / "bin" / "mcpbox"),
        args=["run", "--profile", "everything", "--", str(SERVER)],
    )
    print(f"$ mcpbox run --profile everything -- {SERVER}", file=sys.stderr)
    async with Client(parameters) as client:
        tools = await client.list_tools()
        print(f"{len(tools.tools)} tools: {', '.join(tool.name for tool in tools.tools)}")
        echoed = await client.call_tool("echo", {"message": "hello from inside the sandbox"})
        print("echo ->", echoed.content[0].text)
        summed = await client.call_tool("get-sum", {"a": 2, "b": 40})
        print("get-sum(2, 40) ->", summed.content[0].text)
        environment = await client.call_tool("get-env", {})
        print("the server's whole environment:", environment.content[0].text[:400])


if __name__ == "__main__":
    asyncio.run(main())
