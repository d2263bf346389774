"""Venue modules: wire frames of one exchange in, normalized events out (pure)."""
