"""Shared fixtures: real services (PostgreSQL, Valkey, SeaweedFS) and the tiny model."""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.engine",
    "tests.fixtures.backends",
]
