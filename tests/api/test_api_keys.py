"""API keys: only their SHA-256 reaches SQL, and `nightowl keys revoke` shuts a key out at once."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import inspect, select, text
from typer.testing import CliRunner

from cli.main import app as cli
from core.db.models import ApiKey
from tests.fixtures.backends import Service


def _dump_database(service: Service) -> str:
    """Every value of every table, as text."""
    with service.context.db.transaction() as session:
        names = inspect(session.connection()).get_table_names()
        rows = [
            repr(tuple(row))
            for name in names
            for row in session.execute(text(f'SELECT * FROM "{name}"'))  # noqa: S608 (our tables)
        ]
    return "\n".join(rows)


def test_keys_are_stored_only_as_sha256(service: Service) -> None:
    """The database holds a key's SHA-256 and its 8-character display prefix, never the secret."""
    key = service.new_key("acme")
    assert service.client.get("/v1/jobs", headers=service.headers(key)).status_code == 200
    with service.context.db.transaction() as session:
        row = session.scalars(select(ApiKey)).one()
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert row.prefix == key[:8]
    secret = key[8:]
    assert len(secret) >= 38  # 43 url-safe characters (256 bits) less the 5 shown
    dump = _dump_database(service)
    assert row.key_hash in dump
    assert secret not in dump
    assert secret[:16] not in dump and secret[-16:] not in dump


def test_revoked_key_is_refused_on_the_very_next_request(
    service: Service, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """`nightowl keys revoke <id>` (and by prefix) against the service's database makes the next
    request with that key a 401, while the tenant's other key keeps working."""
    first, second, third = (service.new_key("acme") for _ in range(3))
    for key in (first, second, third):
        assert service.client.get("/v1/jobs", headers=service.headers(key)).status_code == 200
    with service.context.db.transaction() as session:
        first_id = session.scalar(
            select(ApiKey.id).where(ApiKey.key_hash == hashlib.sha256(first.encode()).hexdigest())
        )
    monkeypatch.setenv("NIGHTOWL_DATABASE_URL", service.settings.sqlalchemy_url)
    monkeypatch.setenv("NIGHTOWL_HOME", str(service.settings.home))
    runner = CliRunner()

    result = runner.invoke(cli, ["keys", "revoke", str(first_id)])
    assert result.exit_code == 0, result.output
    assert "revoked 1 key" in result.output
    refused = service.client.get("/v1/jobs", headers=service.headers(first))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"

    result = runner.invoke(cli, ["keys", "revoke", second[:8]])
    assert result.exit_code == 0, result.output
    assert service.client.get("/v1/jobs", headers=service.headers(second)).status_code == 401
    assert service.client.get("/v1/jobs", headers=service.headers(third)).status_code == 200

    again = runner.invoke(cli, ["keys", "revoke", str(first_id)])
    assert again.exit_code == 1  # nothing left to revoke under that id


def test_a_prefix_shared_by_two_keys_revokes_neither(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Display prefixes may collide across tenants: revoking by such a prefix is refused."""
    mine, theirs = service.new_key("acme"), service.new_key("globex")
    with service.context.db.transaction() as session:
        session.execute(ApiKey.__table__.update().values(prefix="no_same1"))
    monkeypatch.setenv("NIGHTOWL_DATABASE_URL", service.settings.sqlalchemy_url)
    monkeypatch.setenv("NIGHTOWL_HOME", str(service.settings.home))
    result = CliRunner().invoke(cli, ["keys", "revoke", "no_same1"])
    assert result.exit_code == 1 and "matches 2 keys" in result.output
    for key in (mine, theirs):
        assert service.client.get("/v1/jobs", headers=service.headers(key)).status_code == 200
