"""Request dependencies as `Annotated` aliases: the session (the one commit), the caller."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.ratelimit import KeyRateLimiter
from core.auth import Principal, authenticate
from core.db import Database
from core.errors import Unauthorized
from core.logging import bind_context
from core.queue import Dispatcher
from core.settings import Settings
from core.storage import ObjectStore


@dataclass
class Resources:
    """What the API process makes at start-up (lifespan) and every request shares."""

    settings: Settings
    db: Database
    store: ObjectStore
    dispatcher: Dispatcher


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def get_session(resources: ResourcesDep) -> Iterator[Session]:
    # scope="function" below: the commit happens before the response is sent, so a failed
    # commit is an error response and never a 202 without a row.
    with resources.db.transaction() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_principal(request: Request, resources: ResourcesDep) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    # Its own short read: an upload route must not hold a transaction while the body streams.
    with resources.db.transaction() as session:
        principal = authenticate(session, key.strip())
    bind_context(tenant_id=principal.tenant_id)
    # Every authenticated route counts against its key's rate (api/ratelimit.py).
    limiter: KeyRateLimiter = request.app.state.rate_limiter
    limiter.hit(principal.key_id)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
