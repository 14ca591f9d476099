"""nightowl cli."""
