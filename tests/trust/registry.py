"""A package registry on loopback for the provenance tests: npm's and PyPI's JSON answers and files.

No real registry holds packages attested by the suite's private Sigstore instance, and none strips
provenance on request; this one serves exactly the documents a test puts in it (by path, with their content
type), so that each answer a real registry or mirror gives can be produced. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
from typing import Any


class Registry:
    def __init__(self) -> None:
        self.routes: dict[str, tuple[str, bytes]] = {}
        self.asked: list[str] = []
        routes, asked = self.routes, self.asked

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.split("?", 1)[0]
                asked.append(path)
                kind, body = routes.get(path, ("application/json", b""))
                self.send_response(200 if path in routes else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def json(self, path: str, document: Any, kind: str = "application/json") -> None:
        self.routes[path] = (kind, json.dumps(document).encode())

    def file(self, path: str, data: bytes) -> None:
        self.routes[path] = ("application/octet-stream", data)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def npm_integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def statement(subject: str, algorithm: str, digest: str, predicate_type: str) -> dict[str, Any]:
    return {"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": subject, "digest": {algorithm: digest}}],
            "predicateType": predicate_type, "predicate": {}}


def pep740_attestation(bundle: bytes) -> dict[str, Any]:
    """A minted DSSE bundle in PEP 740's abbreviated attestation form, as PyPI serves it."""
    document = json.loads(bundle)
    material = document["verificationMaterial"]
    envelope = document["dsseEnvelope"]
    return {"version": 1,
            "verification_material": {"certificate": material["certificate"]["rawBytes"],
                                      "transparency_entries": material["tlogEntries"]},
            "envelope": {"statement": envelope["payload"], "signature": envelope["signatures"][0]["sig"]}}
