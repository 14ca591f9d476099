"""nightowl api."""
