"""Storage: SQLAlchemy models, the session factory and migrations."""
