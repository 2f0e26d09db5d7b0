"""Where search data lives, behind one protocol: ``local`` (SQLite + hnswlib + in-memory postings and
BM25 caches) and ``qdrant`` (a Qdrant collection), side by side; ``choice`` records which one a
folder uses."""
