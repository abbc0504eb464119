"""The OTLP/HTTP receiver: the leader sidecar takes AI tools' OpenTelemetry usage events on
loopback (`http`: the server, `body`: decoding, `otlp_json`: the JSON shapes, `usage`: one record
type per tool, `ids`: event ids, `export`: a request to ledger events and its answer,
`receiver`: listening as the leader)."""
