"""The leaves every layer builds on: the version, the bad-input error, statuses, the registry,
the table schema and the shared typed values. Nothing here imports torch or another layer."""
