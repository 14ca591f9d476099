"""nightowl api: the FastAPI app over `core` (it never imports `worker`).

Each resource (files, jobs, batches, schedules, webhooks) lives in three modules of one name:

- `api/schemas/<resource>.py`: its pydantic request and response models.
- `api/services/<resource>.py`: its queries and service functions. They add and flush; the
  request's session dependency (`api.deps`) commits. What workers do as well stays in `core`
  (creating jobs and batches, the webhook secret) and the service module re-exports it.
- `api/routes/<resource>.py`: its HTTP adapter. It declares paths, parameters and statuses, calls
  a service function and shapes the answer with the resource's models; it holds no queries.

Shared by them all: `api.pagination` (the `?limit=&after=` cursor, `page()` and `Page[T]`),
`api.schemas` (`ApiObject`, the error body) and `core.tenancy.owned` (another tenant's id is a
404, like an unknown one).
"""
