"""The local backend: caches rebuilt from SQLite (hnswlib dense index, sparse postings, BM25) and
the source the searcher reads them through."""
