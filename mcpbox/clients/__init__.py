"""Desktop AI clients' configs: `mcpbox wrap`, `unwrap` and `clients` (never imported by `mcpbox run`)."""
