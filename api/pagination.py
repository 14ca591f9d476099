"""Cursor pagination of every list endpoint: `?limit=&after=<last_id>`, newest first.

Ids are time-ordered (`core.db.types.new_id`), so "newest first" is "id descending" and the
cursor is the last id of the previous page. `page()` runs the query, `Page[T]` is the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Generic, Literal, Self, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from api.schemas import ApiObject

R = TypeVar("R")
T = TypeVar("T", bound=ApiObject)


class Cursor(BaseModel):
    """The page a list request asks for: at most `limit` rows older than `after`.

    A list endpoint with filters declares them in a subclass; `filters()` gives the ones set.
    """

    limit: int = Field(default=20, ge=1, le=100)
    after: str | None = None

    def filters(self) -> dict[str, object]:
        """The subclass's filters that the request set, by name."""
        given = self.model_dump(exclude={"limit", "after"}, exclude_none=True)
        return {name: value for name, value in given.items() if value != ""}


CursorDep = Annotated[Cursor, Query()]


@dataclass(frozen=True)
class Rows(Generic[R]):
    """One page of rows, and whether more follow."""

    items: list[R]
    has_more: bool


def page(
    session: Session, query: Select[R], key: InstrumentedAttribute[str], cursor: Cursor
) -> Rows[R]:
    """The rows of `query`, `key` descending, `cursor.limit` of them after `cursor.after`, and
    only those whose columns equal the cursor's filters (named as the columns of `key`'s row)."""
    for name, value in cursor.filters().items():
        query = query.where(getattr(key.class_, name) == value)
    if cursor.after:
        query = query.where(key < cursor.after)
    rows = list(session.scalars(query.order_by(key.desc()).limit(cursor.limit + 1)))
    return Rows(rows[: cursor.limit], len(rows) > cursor.limit)


class Page(BaseModel, Generic[T]):
    """A list answer: `{"object": "list", "data", "has_more", "last_id"}`."""

    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool
    last_id: str | None

    @classmethod
    def of(cls, rows: Rows[R], out: Callable[[R], T]) -> Self:
        """The page of `rows`, each shown as `out(row)`."""
        data = [out(row) for row in rows.items]
        return cls(data=data, has_more=rows.has_more, last_id=data[-1].id if data else None)
