"""The sidecar's state and background work, independent of LSP: recording, the push schedule,
the sources and the OTLP receiver, and a remote reader's forwarding."""
