"""A minimal MCP server on the standard library, for benchmarks.

Real servers spend most of their start-up importing their SDK; this one starts
about as fast as Python can, so what a benchmark sees on top of it is the
wrapper's own cost. It answers initialize, tools/list, an `echo` tool and a
`blob` tool returning `bytes` bytes of text (a large result): plain ASCII prose,
or with `"kind": "code"` source-like lines with brackets and a non-ASCII
character or two, sent as raw UTF-8 as Node servers do. The blob's JSON is
built once per size and kind, so a benchmark measures moving it, not making it
(`"fresh": true` builds it anew for each call, as a real server would).
The adversarial kinds aim at the relay's prefilters: one character repeated
(`x`, `-`, `_`, `backslash`, `del`, `shy` for U+00AD, `emdash`: each leads a
token pattern or a scan), `base64` of random bytes and an xxd-style `hex` dump.
"""

import base64
import json
import random
import sys

KINDS = ["text", "code", "x", "-", "_", "backslash", "del", "shy", "emdash", "base64", "hex"]
TOOLS = [{"name": "echo", "description": "Echo the text back",
          "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
         {"name": "blob", "description": "Return `bytes` bytes of text",
          "inputSchema": {"type": "object", "properties": {"bytes": {"type": "integer"},
                                                           "kind": {"enum": KINDS},
                                                           "fresh": {"type": "boolean"}}}}]
LINES = {"text": "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.\n",
         "code": "for (i = 0; i < n; i++) { total += values[i]; }  /* naïve sum — fine */\n",
         "x": "x", "-": "-", "_": "_", "backslash": "\\", "del": "\x7f", "shy": "\u00ad", "emdash": "\u2014"}
blobs: dict[tuple[int, str], bytes] = {}  # (size, kind) -> the JSON text of a result holding that much text


def blob_result(size: int, kind: str, fresh: bool) -> bytes:
    if (size, kind) not in blobs or fresh:
        blobs.clear()
        text = made_text(size, kind)
        blobs[size, kind] = json.dumps({"content": [{"type": "text", "text": text}], "isError": False},
                                       ensure_ascii=False).encode()
    return blobs[size, kind]


def made_text(size: int, kind: str) -> str:
    """About `size` bytes of UTF-8 text of `kind`."""
    noise = random.Random(size).randbytes
    if kind == "base64":
        return base64.b64encode(noise(size * 3 // 4)).decode()
    if kind == "hex":
        data = noise(size * 16 // 84)  # 84 characters a line of 16 bytes
        return "".join(f"{at:08x}: {data[at:at + 16].hex(' ', 2)}  {data[at:at + 16].hex()}\n"
                       for at in range(0, len(data), 16))
    line = LINES[kind].encode()
    return (line * (size // len(line) + 1))[:size].decode(errors="ignore")


def answer(request: dict) -> dict | bytes | None:
    method, ident = request.get("method"), request.get("id")
    if ident is None:
        return None
    if method == "initialize":
        result = {"protocolVersion": request["params"]["protocolVersion"], "capabilities": {"tools": {}},
                  "serverInfo": {"name": "tiny", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call" and request["params"].get("name") == "blob":
        arguments = request["params"].get("arguments", {})
        result_json = blob_result(int(arguments.get("bytes", 0)), arguments.get("kind", "text"),
                                  bool(arguments.get("fresh")))
        return b'{"jsonrpc": "2.0", "id": ' + json.dumps(ident).encode() + b', "result": ' + result_json + b"}"
    elif method == "tools/call":
        text = request["params"].get("arguments", {}).get("text", "")
        result = {"content": [{"type": "text", "text": text}], "isError": False}
    else:
        return {"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": f"no method {method}"}}
    return {"jsonrpc": "2.0", "id": ident, "result": result}


for line in sys.stdin.buffer:
    reply = answer(json.loads(line))
    if isinstance(reply, bytes):
        sys.stdout.buffer.write(reply)
        sys.stdout.buffer.write(b"\n")
        sys.stdout.buffer.flush()
    elif reply is not None:
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
