"""nightowl core."""
