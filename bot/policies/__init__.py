"""Dialogue policies of safe-report (config.yml `policies:`)."""
