"""The Qdrant backend: SQLite stays the record of files and chunks; vectors, lexical weights and
keyword vectors live in a Qdrant collection (a cluster or an embedded folder)."""
