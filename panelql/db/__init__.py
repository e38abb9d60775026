"""The gateway's own state: SQLAlchemy 2 async models, repositories and Alembic migrations."""
