"""The LSP face: the stdio transport, the session it answers itself, the pygls server, and the
sidecar's process around them."""
