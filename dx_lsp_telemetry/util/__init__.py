"""Small helpers every layer shares: values quoted in messages, owner-only files, logging."""
