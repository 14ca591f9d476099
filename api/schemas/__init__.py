"""Pydantic models of the REST contract (DESIGN.md), one module per resource; here the shared ones.

Every object answered is an `ApiObject` made `from_row`; every list is an `api.pagination.Page`
of them; every error is an `ErrorOut`.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field


class ApiObject(BaseModel):
    """An object the API returns (OpenAI style); its `id` is also its cursor in a list."""

    id: str

    @classmethod
    def from_row(cls, row: object, **computed: Any) -> Self:
        """This model of `row`: each field is the row's attribute of that name, or `computed`."""
        fields = cls.model_fields.keys() - computed.keys()
        given = {name: getattr(row, name) for name in fields if hasattr(row, name)}
        return cls.model_validate(given | computed)


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    message: str


class ErrorOut(BaseModel):
    """Every error response: `{"error": {"code", "message"}}`."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorBody


# Documented on every route (api/app.py), replacing FastAPI's default 422 schema, which is not
# the body the error handlers send.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorOut, "description": "Client error: `{error: {code, message}}`"},
    "5XX": {"model": ErrorOut, "description": "Server error: `{error: {code, message}}`"},
}


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)
