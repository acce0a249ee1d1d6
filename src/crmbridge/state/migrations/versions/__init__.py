"""The numbered revisions, oldest first (alembic reads them by file, not by import)."""
