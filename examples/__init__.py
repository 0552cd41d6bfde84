"""Example services run with graceful (see the README)."""
