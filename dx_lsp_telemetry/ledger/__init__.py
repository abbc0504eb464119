"""The local ledger: JSONL files per UTC date, their SQLite index, recording into them, pruning,
and where the data folder lives."""
