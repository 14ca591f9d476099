"""SQL: typed models, the engine and the one transaction scope per unit of work."""

from core.db.models import ApiKey, Base, Batch, Chunk, File, Job, Tenant
from core.db.session import Database, on_commit

__all__ = ["ApiKey", "Base", "Batch", "Chunk", "Database", "File", "Job", "Tenant", "on_commit"]
