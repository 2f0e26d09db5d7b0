"""The index folder's truth: the SQLite store (files, chunks, pending work) and the writer lock."""
