"""nightowl worker."""
