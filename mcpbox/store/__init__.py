"""mcpbox's store of npm and PyPI servers: what an `npx -y PKG` or `uvx PKG` command line runs instead.

`npx` and `uvx` fetch their package at every start, which a sandbox without network cannot do and which
lets the registry change what runs at any time. mcpbox installs the package once, itself sandboxed (network,
only the store entry writable, no lifecycle scripts, no home), pins the resolved version and its hashes
per server, and runs the installed copy offline from then on.
"""
