"""Care-staff identities shared by every care-facing entry point (acks, console)."""
