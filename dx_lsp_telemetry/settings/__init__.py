"""The `dxTelemetry` settings, the machine's managed configuration, the problems found in them,
and the calendar days they define."""
