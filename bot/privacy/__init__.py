"""Care don't share: personal-data detection, redaction, encryption and retention."""
