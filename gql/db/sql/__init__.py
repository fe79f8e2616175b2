"""SQL: named queries and numbered migrations."""
