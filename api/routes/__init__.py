"""HTTP routes: thin adapters over api.services."""
