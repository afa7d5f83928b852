"""The alert notifier: `alerts` -> MQTT / webhook / e-mail, escalation, acks, audit.

The only place where a pseudonym is resolved back to ward, bed and display
name (docs/architecture.md, "Privacy"). See docs/notify.md.
"""
