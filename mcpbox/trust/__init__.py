"""Signature verification: only the server its publisher signed runs, race-free, fast on every launch.

`verify` is the only module the launch path imports; it serves an unchanged,
already-verified artifact from a cache without importing sigstore, hashlib or
cryptography. The rest is loaded when something is new: `store` (the private,
content-addressed staging copy), `manifest` (signed tree statements),
`signature` and `policy` (sigstore-python and the identity policy), `root`
(which trust root, pinned or refreshed on request).
"""
