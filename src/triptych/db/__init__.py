"""PostgreSQL: the schema (versioned SQL migrations) and connection helpers."""
