"""Sources: AI assistants' own local usage logs, read into the ledger exactly once.

One module per tool turns that tool's records into `SourceRecord`s with a stable key; `ingest`
turns them into ledger events (hashed ids, the source's DX tool name, spend or an estimate) and
keeps per-file checkpoints, so a re-read or a restart never counts a token twice.
"""
