"""The keyword index (``chunks_fts``, FTS5): BM25 over chunk text and file names.

Its rows are written with a file's chunks (:meth:`~desktop_app.core.storage.store.Store.replace_file`)
through :func:`keyword_row`, and rebuilt whole when ``core.analyze`` changes its terms.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from pathlib import Path

from desktop_app.core import analyze
from desktop_app.core.storage.schema import batched, placeholders
from desktop_app.core.storage.transactions import Transactions

# The keyword index holds terms made by ``core.analyze`` (stemmed, folded, CJK bigrams);
# FTS5's ascii tokenizer only splits them at the spaces. Contentless: the text is in ``chunks``.
KEYWORD_TABLE = "CREATE VIRTUAL TABLE chunks_fts USING fts5(text, name, content='', tokenize='ascii')"


class KeywordTable(Transactions):
    """Keyword search over the chunks' analysed terms."""

    def rebuild_keyword_index(self) -> None:
        """(Re)make the keyword index from the chunks: new indexes, and ones made by an older analyzer."""
        with self.transaction():
            self.conn.execute("DROP TABLE IF EXISTS chunks_fts")
            self.conn.execute(KEYWORD_TABLE)
            rows = self.conn.execute("SELECT c.id, c.text, f.path FROM chunks c JOIN files f ON f.id = c.file_id")
            while part := rows.fetchmany(1000):
                self.conn.executemany("INSERT INTO chunks_fts(rowid, text, name) VALUES (?,?,?)",
                                      [keyword_row(*row) for row in part])
            self.set_meta("keyword_analyzer", analyze.ANALYZER_VERSION)

    def keyword_top(self, fts_query: str, limit: int, allowed: Collection[int] | None = None,
                    blocked: Collection[int] = ()) -> list[tuple[int, float]]:
        """BM25 over chunk text and file names; higher is better. ``allowed`` and ``blocked`` restrict
        the matches inside FTS5's own ranking (a filter never leaves fewer than ``limit`` when more exist)."""
        conditions, values = ["chunks_fts MATCH ?"], [fts_query]
        if allowed is not None:
            conditions.append("rowid IN (SELECT value FROM json_each(?))")
            values.append(json.dumps(sorted(allowed)))
        if blocked:
            conditions.append("rowid NOT IN (SELECT value FROM json_each(?))")
            values.append(json.dumps(sorted(blocked)))
        rows = self.conn.execute(
            f"SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE {' AND '.join(conditions)} "
            "ORDER BY bm25(chunks_fts) LIMIT ?", (*values, limit))
        return [(r[0], r[1]) for r in rows]

    def keyword_sources(self, chunk_ids: list[int] | None = None) -> Iterator[tuple[int, str, str]]:
        """(chunk id, text, file path) of every chunk, or of the given ones: what keyword terms come from."""
        sql = "SELECT c.id, c.text, f.path FROM chunks c JOIN files f ON f.id = c.file_id"
        if chunk_ids is None:
            yield from self.conn.execute(sql)
            return
        for part in batched(chunk_ids):
            yield from self.conn.execute(f"{sql} WHERE c.id IN ({placeholders(len(part))})", part).fetchall()

    def document_frequencies(self, terms: Collection[str]) -> tuple[int, dict[str, int]]:
        """How many chunks there are, and how many hold each of ``terms`` (in their text or file name):
        the statistics FTS5's ``bm25()`` takes its IDF from."""
        self.conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocabulary "
                          "USING fts5vocab(main, chunks_fts, row)")
        having = {}
        for term in terms:  # one lookup each: fts5vocab answers ``term = ?`` from the index, not by a scan
            row = self.conn.execute("SELECT doc FROM temp.chunks_vocabulary WHERE term = ?", (term,)).fetchone()
            having[term] = row[0] if row else 0
        return self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0], having

    def keyword_matches(self, fts_query: str) -> set[int]:
        """Every chunk an FTS5 expression matches (phrase and exclusion conditions)."""
        return {r[0] for r in self.conn.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?",
                                                (fts_query,))}


def keyword_row(chunk_id: int, text: str, path: str) -> tuple[int, str, str]:
    """A chunk's keyword-index row: its terms and the terms of its file's name (without the suffix).

    Deleting a row from a contentless FTS5 table needs the values it was inserted with, so
    inserts and deletes both go through here.
    """
    return chunk_id, analyze.index_text(text), analyze.index_text(Path(path).stem)
