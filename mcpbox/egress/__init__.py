"""Network by name: a profile's list of hosts, reached only through a proxy mcpbox runs outside the sandbox.

The sandbox keeps a network namespace of its own with loopback only; a forwarder inside listens there and
passes each connection over a Unix socket to mcpbox's proxy (mcpbox.egress.proxy), which decides by the
pure rules of mcpbox.egress.rules, resolves the name itself and connects to the exact address it judged.
"""
