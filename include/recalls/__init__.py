"""Manufacturer recall snapshots: intake (validation) and state (snapshot diff with history)."""
