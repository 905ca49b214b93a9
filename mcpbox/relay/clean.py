"""What reaches the client and the user's logs from the server: secrets redacted, invisible text removed.

A message keeps its exact bytes unless something had to go; the raw prefilters
decide that before any walk, so most messages cost a scan, not a rewrite. The
envelope (method, id) is never rewritten: a cleaned method could turn into a
denied one, a cleaned id match nothing; a message whose envelope would change
is refused instead (`cleaned` returns None).
"""

import hashlib
import json
from typing import Any

from mcpbox.profile import Profile
from mcpbox.relay import filters, jsonrpc
from mcpbox.relay.jsonrpc import Later, Message

# call arguments as the audit line hashes them; built once, as json.dumps with options builds one per call
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str).encode


class Cleaner:
    def __init__(self, profile: Profile, secrets: dict[str, str]) -> None:
        self.redact = filters.Redactor(secrets, profile.redact.builtin, profile.redact.patterns)
        self.readable = filters.result_cleaner(profile.redact.keep_ansi)  # a result's text as the client reads it
        self.full_arguments = profile.audit.arguments == "full"

    def cleaned(self, message: Message, body: dict[str, Any]) -> bytes | None:
        """The message (with `body`, which a rewrite may have changed) as the client may see it: its original
        bytes unless something had to go; None when that something is in its id or method."""
        raw = message.raw
        suspect, may_change = raw.scan if isinstance(raw, Later) else self.scan(raw)
        if body is message.body and not may_change:
            return raw
        readable = self.readable
        if not suspect:
            change = self.redact  # nothing to clean: only redaction (its own prefilter runs per string)
        else:
            def change(text: str) -> str:
                return self.redact(readable(text))

        number = self.redact.number
        envelope = [body.get("method"), None if message.kind == jsonrpc.RESPONSE else body.get("id")]
        if any(filters.walk(value, change, number=number) != value for value in envelope if value is not None):
            return None
        cleaned = {key: value if key in ("jsonrpc", "id", "method") else filters.walk(value, change, True, number)
                   for key, value in body.items()}
        return raw if cleaned == message.body else jsonrpc.dumps(cleaned)

    def scan(self, raw: bytes) -> tuple[bool, bool]:
        """What the raw prefilters say of a message's bytes: (it may hold something to clean, it may hold
        anything to change: something to clean or to redact)."""
        suspect = filters.suspect(raw)
        return suspect, suspect or self.redact.may_apply(raw)

    def for_log(self, value: Any) -> Any:
        """A value from a peer as the audit log may keep it."""
        if isinstance(value, str):
            return self.redact(value)
        return value if self.redact.number is None else self.redact.number(value)

    def method_for_log(self, method: str | None) -> str:
        """A method that was refused for its envelope, as the audit line may name it."""
        return self.redact(self.readable(method or ""))

    def arguments(self, arguments: Any) -> str:
        """What the audit line keeps of a call's arguments: a hash, or (`full`) their redacted text."""
        canonical = _CANONICAL(arguments)
        if self.full_arguments:
            return self.redact(canonical)
        return "sha256:" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def shown(self, line: bytes) -> bytes:
        """A line for the user's stderr (the server's own, or mcpbox's notes quoting it): clients keep stderr in
        log files, so it is made printable and redacted like what the client receives."""
        text = line.decode(errors="replace")
        shown = self.redact(filters.printable(text))
        return line if shown == text else shown.encode()
