"""A usage event as callers send it and the ledger keeps it, and a day's events as totals and
as the one DX record per (date, tool)."""
