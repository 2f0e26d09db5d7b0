"""Where search data lives, behind one protocol (``protocol``): ``local`` (SQLite + hnswlib + in-memory
postings and BM25 caches) and ``qdrant`` (a Qdrant collection), side by side, each index holding the
storage's index folder; ``choice`` records which one a folder uses and ``opening`` opens it."""
