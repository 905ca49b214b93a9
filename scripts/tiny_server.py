"""A minimal MCP server on the standard library, for benchmarks.

Real servers spend most of their start-up importing their SDK; this one starts
about as fast as Python can, so what a benchmark sees on top of it is the
wrapper's own cost. It answers initialize, tools/list and an `echo` tool.
"""

import json
import sys

TOOLS = [{"name": "echo", "description": "Echo the text back",
          "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}}]


def answer(request: dict) -> dict | None:
    method, ident = request.get("method"), request.get("id")
    if ident is None:
        return None
    if method == "initialize":
        result = {"protocolVersion": request["params"]["protocolVersion"], "capabilities": {"tools": {}},
                  "serverInfo": {"name": "tiny", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call":
        text = request["params"].get("arguments", {}).get("text", "")
        result = {"content": [{"type": "text", "text": text}], "isError": False}
    else:
        return {"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": f"no method {method}"}}
    return {"jsonrpc": "2.0", "id": ident, "result": result}


for line in sys.stdin.buffer:
    reply = answer(json.loads(line))
    if reply is not None:
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
