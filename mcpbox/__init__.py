"""mcpbox: run a local MCP server in a sandbox and filter what it says."""

__version__ = "0.1.0"
