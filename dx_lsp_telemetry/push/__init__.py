"""The push to DX: which days are due, the DX client, the journal of push states, the outbox,
and the status built from them."""
