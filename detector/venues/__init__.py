"""Venue modules: one exchange's stream names; its wire frames in, normalized events out (pure)."""
