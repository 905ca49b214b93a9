"""A TUF repository of the suite's own, served on loopback, for `mcpbox trust update`'s success path.

Sigstore's public TUF repository needs the network, so the tests publish
their private trust root through a repository of their own: one ed25519 key
signs root, targets, snapshot and timestamp (python-tuf's metadata API, which
sigstore depends on), and sigstore's real TUF client fetches and checks it.
`tamper` serves bytes other than the ones the signed targets metadata lists.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib import parse

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp

TARGET = "trusted_root.json"


class Repository:
    def __init__(self, directory: Path, trusted_root: bytes) -> None:
        self.directory = directory
        signer = CryptoSigner.generate_ed25519()
        expires = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(days=1)
        root = Root(expires=expires, consistent_snapshot=False)
        for role in ("root", "targets", "snapshot", "timestamp"):
            root.add_key(signer.public_key, role)
        targets = Targets(expires=expires)
        targets.targets[TARGET] = TargetFile.from_data(TARGET, trusted_root, ["sha256"])
        snapshot = Snapshot(expires=expires)
        snapshot.meta["targets.json"] = MetaFile(version=targets.version)
        timestamp = Timestamp(expires=expires)
        timestamp.snapshot_meta = MetaFile(version=snapshot.version)
        (directory / "targets").mkdir(parents=True)
        for name, signed in (("root", root), ("targets", targets), ("snapshot", snapshot),
                             ("timestamp", timestamp)):
            metadata = Metadata(signed)
            metadata.sign(signer)
            metadata.to_file(str(directory / f"{name}.json"))
        (directory / "1.root.json").write_bytes((directory / "root.json").read_bytes())
        (directory / "targets" / TARGET).write_bytes(trusted_root)

    def tamper(self, data: bytes) -> None:
        (self.directory / "targets" / TARGET).write_bytes(data)

    def trust(self, data_home: Path, url: str) -> None:
        """Put the repository's root where sigstore's TUF client looks for a URL it has no root built in."""
        metadata_dir = data_home / "sigstore-python" / "tuf" / parse.quote(url, safe="")
        metadata_dir.mkdir(parents=True, exist_ok=True)
        (metadata_dir / "root.json").write_bytes((self.directory / "root.json").read_bytes())

    @contextlib.contextmanager
    def serving(self) -> Iterator[str]:
        """The repository's URL while a loopback HTTP server of this test serves it."""
        handler = functools.partial(_QuietHandler, directory=str(self.directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass
