//! Storage adapters for Assay: SQLite (embedded default) and PostgreSQL.
