"""Cross-tenant sweep generated from the OpenAPI document: every route with an id in its path,
called with another tenant's ids, answers 404 exactly as for an id that does not exist, shows
nothing of the owner's, and changes nothing.

The routes come from `app.openapi()`, so a new route with an id is swept as soon as it exists;
a path parameter this test has no object for fails it until one is added to `_objects`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from testkit.samples import OBSERVATORY_PAGES, pdf_bytes
from testkit.stack import free_port
from tests.fixtures.backends import Service

_PARAM = re.compile(r"\{([^}]+)\}")
_METHODS = {"get", "post", "put", "patch", "delete"}
# Bodies for routes with an id that also take a JSON body: (METHOD, path template) -> body.
# None of them takes one today; a new one must be given a valid body here so that only the id
# (and not validation) decides its answer.
_BODIES: dict[tuple[str, str], Any] = {}


def _ok(service: Service, key: str, method: str, path: str, **kwargs: Any) -> Any:
    response = service.client.request(method, path, headers=service.headers(key), **kwargs)
    assert response.status_code < 300, (path, response.text)
    return response.json()


def _objects(service: Service, key: str, drop: Path) -> tuple[dict[str, str], list[str]]:
    """One of every kind of object as `key`'s tenant: path parameter -> value, and the secrets
    (ids, names, URLs, hashes) that must never appear in another tenant's answer."""
    pdf = pdf_bytes(OBSERVATORY_PAGES)
    upload = _ok(
        service, key, "POST", "/v1/files", files={"file": ("alice-private-report.pdf", pdf)}
    )
    hook = f"http://127.0.0.1:{free_port()}/alice-hook"  # nothing listens: delivery stays pending
    job_body = {
        "kind": "document.qa",
        "input": {"file_id": upload["id"]},
        "params": {"questions": ["Who founded the observatory?"]},
        "webhook_url": hook,
    }
    job = _ok(service, key, "POST", "/v1/jobs", json=job_body)
    line = {"custom_id": "alice-line-1", "method": "POST", "url": "/v1/jobs", "body": job_body}
    lines = _ok(
        service,
        key,
        "POST",
        "/v1/files",
        files={"file": ("alice-batch.jsonl", (json.dumps(line) + "\n").encode())},
    )
    batch = _ok(
        service,
        key,
        "POST",
        "/v1/batches",
        json={"input_file_id": lines["id"], "endpoint": "/v1/jobs", "completion_window": "24h"},
    )
    service.dispatcher.drain()
    schedule = _ok(
        service,
        key,
        "POST",
        "/v1/schedules",
        json={
            "name": "alice-nightly",
            "cron": "0 2 * * *",
            "source": {"type": "local", "path": str(drop)},
            "template": {"kind": "document.qa", "params": {"questions": ["q"]}},
        },
    )
    job = _ok(service, key, "GET", f"/v1/jobs/{job['id']}")
    assert job["status"] == "succeeded", job
    batch = _ok(service, key, "GET", f"/v1/batches/{batch['id']}")
    deliveries = _ok(service, key, "GET", "/v1/webhooks/deliveries")["data"]
    assert deliveries, "a finished job with a webhook_url leaves a delivery row"
    params = {
        "file_id": upload["id"],
        "job_id": job["id"],
        "name": sorted(job["artifacts"])[0],
        "batch_id": batch["id"],
        "schedule_id": schedule["id"],
        "delivery_id": deliveries[0]["id"],
    }
    with service.context.db.transaction() as session:
        from core.auth import authenticate

        tenant_id = authenticate(session, key).tenant_id
    secrets = [
        *params.values(),
        tenant_id,
        upload["sha256"],
        "alice-private-report",
        "alice-batch",
        "alice-hook",
        "alice-line-1",
        "alice-nightly",
        str(drop),
        *(v for v in (batch.get("output_file_id"), batch.get("error_file_id")) if v),
    ]
    return params, secrets


def _snapshot(service: Service, key: str, params: dict[str, str]) -> dict[str, Any]:
    """What the owner sees of each object, to show the sweep changed nothing."""
    return {
        path: _ok(service, key, "GET", path)
        for path in (
            f"/v1/files/{params['file_id']}",
            f"/v1/jobs/{params['job_id']}",
            f"/v1/batches/{params['batch_id']}",
            f"/v1/schedules/{params['schedule_id']}",
            f"/v1/webhooks/deliveries/{params['delivery_id']}",
        )
    }


def test_every_route_with_an_id_answers_404_to_another_tenant(
    make_service: Any, tmp_path: Path
) -> None:
    """Each (method, path) of the OpenAPI document with an id answers another tenant's ids with
    the 404 of a missing id, leaks none of the owner's ids or data, and alters nothing."""
    drop = tmp_path / "drop"
    drop.mkdir()
    service: Service = make_service(
        schedule_local_roots=[drop], fetch_allow_networks=["127.0.0.1/32"]
    )
    alice, mallory = service.new_key("alice"), service.new_key("mallory")
    params, secrets = _objects(service, alice, drop)
    before = _snapshot(service, alice, params)
    ghosts = {name: f"{value}X" for name, value in params.items()}

    swept: list[str] = []
    for template, operations in service.client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        names = _PARAM.findall(template)
        if not names:
            continue
        unknown = sorted(set(names) - params.keys())
        assert not unknown, (
            f"{template} has path parameter(s) {unknown} this sweep has no object for: "
            "create one in _objects() and map the name to its id"
        )
        for method in sorted(set(operations) & _METHODS):
            body = _BODIES.get((method.upper(), template))
            assert "requestBody" not in operations[method] or body is not None, (
                f"{method.upper()} {template} takes a body: add a valid one to _BODIES"
            )
            kwargs = {} if body is None else {"json": body}
            path = template.format(**params)
            response = service.client.request(
                method.upper(), path, headers=service.headers(mallory), **kwargs
            )
            assert response.status_code == 404, (method, path, response.text)
            assert set(response.json()) == {"error"}, response.text
            assert response.json()["error"]["code"] == "not_found"
            # Indistinguishable from an id that exists nowhere (the id asked for is echoed).
            ghost = service.client.request(
                method.upper(),
                template.format(**ghosts),
                headers=service.headers(mallory),
                **kwargs,
            )
            unghosted = ghost.text
            for name, value in ghosts.items():
                unghosted = unghosted.replace(value, params[name])
            assert (ghost.status_code, unghosted) == (404, response.text), (method, path)
            # Nothing of the owner's beyond the ids in the path itself.
            asked = {params[n] for n in names}
            leaked = [s for s in secrets if s not in asked and s in response.text]
            assert not leaked, (method, path, leaked)
            swept.append(f"{method.upper()} {template}")

    assert len(swept) >= 15, swept  # today: 15 (method, path) pairs with an id
    assert _snapshot(service, alice, params) == before


def test_list_filters_naming_another_tenants_ids_find_nothing(
    make_service: Any, tmp_path: Path
) -> None:
    """Every list route's `*_id` query filter, given another tenant's id, answers an empty page
    that shows none of the owner's data (the filters come from the OpenAPI document too)."""
    drop = tmp_path / "drop"
    drop.mkdir()
    service: Service = make_service(
        schedule_local_roots=[drop], fetch_allow_networks=["127.0.0.1/32"]
    )
    alice, mallory = service.new_key("alice"), service.new_key("mallory")
    params, secrets = _objects(service, alice, drop)
    # A delivery's object_id is the job (or batch) it reports on.
    filters = {"batch_id": params["batch_id"], "object_id": params["job_id"]}
    swept = []
    for template, operations in service.client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        get = operations.get("get")
        if get is None or _PARAM.search(template):
            continue
        names = [
            p["name"]
            for p in get.get("parameters", [])
            if p["in"] == "query" and p["name"].endswith("_id")
        ]
        for name in names:
            assert name in filters, f"GET {template}?{name}= has no object in this sweep"
            response = service.client.get(
                template, params={name: filters[name]}, headers=service.headers(mallory)
            )
            assert response.status_code == 200, response.text
            assert response.json()["data"] == [], (template, name)
            assert not [s for s in secrets if s != filters[name] and s in response.text]
            swept.append(f"{template}?{name}")
    assert len(swept) >= 2, swept
