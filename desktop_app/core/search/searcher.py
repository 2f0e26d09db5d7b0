"""query -> candidates from each channel -> exact per-channel scores -> fused, grouped hits.

Candidates are the union of each channel's top K: dense, sparse and (when keyword search takes
part) BM25, asked of the index's source (:mod:`desktop_app.core.backends.local.source`, or a Qdrant
collection). Every candidate then gets every active channel's exact score, fused as
:mod:`~desktop_app.core.search.fusion` says, and the ranking is grouped into file hits
(:mod:`~desktop_app.core.search.results`).

A mixed index (stage 2 still encoding, or a file past its meaning cap) holds chunks with words
only. Hybrid search then also asks the keyword channel, and a chunk without vectors stands in
with the fused score that encoded chunks get at its keyword score: see
:func:`~desktop_app.core.search.fusion.stand_in_scores` and bench/README.md ("Search over a mixed index").
"""

from __future__ import annotations

import os
import re
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from desktop_app.core.config import BGE_M3_WEIGHTS, MODES, Weights, default_weights
from desktop_app.core.errors import IndexMismatchError, UsageError, shown
from desktop_app.core.model.encoder import Encoder, Encoding
from desktop_app.core.model.query_batch import QueryBatcher
from desktop_app.core.model.resolve import TRAINED_CHANNELS, trusted_channels
from desktop_app.core.search.fusion import FUSIONS, colbert_score, fuse, stand_in_scores
from desktop_app.core.search.query import Filters, Query, require_text
from desktop_app.core.search.query import parse as parse_query
from desktop_app.core.search.results import (
    ChunkHit,
    Hit,
    QueryWords,
    SearchResult,
    iso_time,
    make_snippet,
    meaning_of,
    rounded,
)
from desktop_app.core.storage.records import CopyGroup
from desktop_app.core.storage.store import Store

if TYPE_CHECKING:
    from desktop_app.core.backends.protocol import Index, Restriction

MODEL_LOADING_NOTE = "ranked by words; meaning-based ranking in a moment (the model is loading)"
CACHES_LOADING_NOTE = "ranked by words; meaning-based ranking in a moment (the index is opening)"
MAX_QUERY_CHARS = 2000
MAX_K = 1000
CANDIDATES_PER_CHANNEL = 100
COLBERT_RERANK = 30
KEYWORD_DEPTH = 1000
MORE_PER_FILE = 3
# How deep the channels are searched at most when copies fold the first candidates away (16x the usual pool).
MAX_POOL = 1600
# A filters-only listing reads this many files per hit asked for, so copies folded away still leave k documents.
LISTING_COPIES_DEPTH = 3
QUERY_MAX_TOKENS = 512
WORD = re.compile(r"\w+", re.UNICODE)
SORTS = ("relevance", "date", "name")


def validate_query(query: str, extra: Filters | None = None, roots: list[str] | None = None) -> Query:
    """Parse the user's text (``in:`` relative to ``roots``); empty, overlong, wordless or malformed
    queries are usage errors."""
    text = require_text(query, "the query").strip()
    if not text and not (extra and extra.active):
        raise UsageError("the query is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise UsageError(f"the query is too long ({len(text):,} characters; the limit is {MAX_QUERY_CHARS:,})")
    parsed = parse_query(text, roots)
    if not WORD.search(parsed.text) and not (parsed.filters.active or (extra and extra.active)):
        if parsed.excluded:
            raise UsageError("the query only excludes words: say what to search for, or add a filter (ext:, in:, ...)")
        raise UsageError("the query has no words to search for (only punctuation or symbols)")
    return parsed


class Searcher:
    """Runs searches against one open index with one encoder (loaded on first need)."""

    def __init__(self, index: Index, encoder: Encoder | None, store: Store | None = None,
                 queries: QueryBatcher | None = None) -> None:
        """``store`` may be a separate read connection, so searches never see a writer's open transaction;
        ``queries`` encodes this searcher's queries together with other searchers' (else it encodes alone)."""
        self.index = index
        self.store = store or index.store
        self.encoder = encoder
        self.queries = queries
        self.fingerprint: str | None = None
        self.helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dense-query")
        self.keyword_helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keyword-query")
        weakref.finalize(self, self.helper.shutdown, wait=False)
        weakref.finalize(self, self.keyword_helper.shutdown, wait=False)
        self.source = index.source(self.store, self.helper)
        # False while another thread loads the model (the window, ``serve``): a search that needs it is
        # answered by keyword meanwhile, with a note, instead of waiting for the load.
        self.wait_for_model = True

    def check_model(self) -> None:
        """Refuse to rank an index's vectors with a query from another model (another space, maybe
        another dimension): a readable error instead of wrong results."""
        if self.encoder is None:
            raise UsageError("this search needs the model, which is not loaded; keyword mode works without it")
        info = self.index.model_info
        if self.fingerprint is None:
            self.fingerprint = self.encoder.spec.fingerprint()
        if info is not None and (info.get("fingerprint") != self.fingerprint or info.get("dim") != self.encoder.dim):
            raise IndexMismatchError(
                f"the index at {self.index.folder} holds vectors of model {info.get('name')}, not "
                f"{self.encoder.spec.display_name}: rebuild it with this model (the window's \"Rebuild with this "
                f"model\", or `desktop-search index --rebuild`) or choose {info.get('name')} again")

    def default_weights(self) -> Weights:
        """The fusion of the model this index was built with (or, before it holds anything, the loaded one)."""
        info = self.index.model_info
        if info is not None:
            return default_weights(trusted_channels(info))
        return default_weights(self.encoder.spec.trusted if self.encoder is not None else TRAINED_CHANNELS)

    def channels_for(self, mode: str, weights: Weights, colbert: bool | None) -> dict[str, float]:
        """Active channels and their weights for a mode; ColBERT joins hybrid only where cheap."""
        if mode not in MODES:
            raise UsageError(f"unknown mode {shown(mode)}: use one of {', '.join(MODES)}")
        if mode != "hybrid":
            return {mode: 1.0}
        if colbert is None:
            colbert = self.index.keeps_colbert or (
                self.encoder is not None and self.encoder.loaded and self.encoder.device.startswith("cuda"))
        active = {name: w for name, w in weights.as_dict().items() if w > 0}
        if not colbert:
            active.pop("colbert", None)
        elif "colbert" not in active:  # asked for by name: BGE-M3's share, even where the model is not trusted with it
            active["colbert"] = BGE_M3_WEIGHTS.colbert
        if not active:
            raise UsageError("every channel that hybrid search can use has weight 0")
        return active

    def search(self, query: str, k: int = 10, mode: str = "hybrid", weights: Weights | None = None,
               colbert: bool | None = None, fusion: str = "max", filters: Filters | None = None,
               sort: str = "relevance") -> SearchResult:
        """Rank the index for ``query`` (its operators and ``filters`` restrict which hits may come back)."""
        parsed = validate_query(query, filters, self.source.roots())
        if fusion not in FUSIONS:
            raise UsageError(f"unknown fusion {shown(fusion)}: use one of {', '.join(FUSIONS)}")
        if sort not in SORTS:
            raise UsageError(f"unknown sort {shown(sort)}: use one of {', '.join(SORTS)}")
        if not 1 <= k <= MAX_K:
            raise UsageError(f"k must be between 1 and {MAX_K} (got {k})")
        parsed = Query(parsed.text, parsed.phrases, parsed.excluded, parsed.filters.merged(filters or Filters()))
        text = parsed.text
        active = self.channels_for(mode, weights or self.default_weights(), colbert)
        by_words = ""
        if mode != "keyword" and self.encoder is not None and not self.encoder.loaded and not self.wait_for_model:
            mode, active, by_words = "keyword", {"keyword": 1.0}, MODEL_LOADING_NOTE
        elif mode != "keyword" and not self.source.ready and not self.wait_for_model:
            mode, active, by_words = "keyword", {"keyword": 1.0}, CACHES_LOADING_NOTE
        elif mode != "keyword" and self.encoder is not None:
            self.encoder.load()  # before the clock starts: took_ms is the search, not the model load
        started = time.perf_counter()
        self.source.refresh()  # what other processes wrote since the last search
        if self.source.empty:
            return self.finish(query.strip(), mode, list(active), active, started, [], sort,
                               "the index is empty: add a folder to search it", by_words)
        allowed, note = self.source.restrict(parsed) if parsed.restricts else (None, "")
        every_copy = parsed.filters.every_copy
        if not WORD.search(text):
            hits = self.file_listing(allowed, k, every_copy)
            return self.finish(query.strip(), "files", [], {}, started, hits, sort, note)
        if note and not parsed.phrases:
            return self.finish(query.strip(), mode, list(active), active, started, [], sort, note, by_words)
        needs_model = mode != "keyword" and set(active) != {"keyword"}
        if needs_model:
            self.check_model()
        # Chunks without vectors are found by their words: hybrid asks the keyword channel for them too.
        wants_keyword = "keyword" in active or (mode == "hybrid" and self.source.unencoded > 0)

        def keyword_job(restriction: Restriction | None) -> Future[dict[int, float]] | None:
            # BM25 in numpy releases the GIL: it runs while the query is encoded and the other channels search.
            return self.keyword_helper.submit(self.keyword_scores, text, restriction) if wants_keyword else None

        keyword = keyword_job(allowed) if not note else None
        encoded = self.encode_query(text, "colbert" in active) if needs_model else None
        pool = max(CANDIDATES_PER_CHANNEL, 4 * k)
        words = QueryWords(text, self.encoder.word_tokens(text) if encoded is not None else {})
        hits = [] if note else self.ranked_hits(mode, active, encoded, keyword, pool, allowed, fusion, words, k,
                                                every_copy)
        while hits and len(hits) < k and not every_copy and pool < MAX_POOL and any(h.duplicates for h in hits):
            # Copies of one document filled the channels' candidates: look deeper for k different documents.
            pool *= 4
            hits = self.ranked_hits(mode, active, encoded, keyword, pool, allowed, fusion, words, k, every_copy)
        if parsed.phrases and len(hits) < k:
            # Few hold the exact phrase (often a question pasted with quotes): the rest come from the
            # ranking without it, marked, as web search engines do.
            loose = Query(text, (), parsed.excluded, parsed.filters)
            loose_allowed, loose_note = self.source.restrict(loose) if loose.restricts else (None, "")
            if not loose_note:
                more = self.ranked_hits(mode, active, encoded, keyword_job(loose_allowed), pool, loose_allowed,
                                        fusion, words, k, every_copy)
                copies = self.source.copies([hit.path for hit in hits + more])
                have = {document_of(copies, hit.path, every_copy) for hit in hits}
                for hit in more:
                    if document_of(copies, hit.path, every_copy) not in have and len(hits) < k:
                        hit.without_phrase = True
                        hits.append(hit)
                if note and hits:  # say why none of them holds the phrase
                    by_words = "; ".join(part for part in (by_words, f"{note}: these hits do not hold it")
                                         if part)
        return self.finish(query.strip(), mode, list(active), active, started, hits, sort, note, by_words)

    def encode_query(self, text: str, colbert: bool) -> Encoding:
        if self.queries is not None:
            return self.queries.encode(text, QUERY_MAX_TOKENS, colbert)
        return self.encoder.encode([text], QUERY_MAX_TOKENS, colbert=colbert)[0]

    def more_like(self, chunk_id: int, k: int = 10) -> SearchResult:
        """Passages like one already indexed: its own stored vectors are the query (no model call),
        through the channels the model is trusted with; the passage's own file is left out."""
        if not 1 <= k <= MAX_K:
            raise UsageError(f"k must be between 1 and {MAX_K} (got {k})")
        started = time.perf_counter()
        self.source.refresh()
        passage = self.source.passage(chunk_id)
        if passage is None:
            raise UsageError("that passage is no longer in the index (its file changed or was removed)")
        source, encoded = passage
        trusted = {c: w for c, w in self.default_weights().as_dict().items() if w > 0 and c in ("dense", "sparse")}
        active = trusted or {"dense": 1.0}
        # One file more than asked for: the passage's own file comes first and is left out.
        pool = max(CANDIDATES_PER_CHANNEL, 4 * (k + 1))
        hits = self.ranked_hits("hybrid", active, encoded, None, pool, None, "max", QueryWords("", {}), k + 1)
        copies = self.source.copies([source.path, *(hit.path for hit in hits)])
        own = document_of(copies, source.path, every_copy=False)  # the passage's file and its copies
        hits = [hit for hit in hits if document_of(copies, hit.path, every_copy=False) != own][:k]
        label = f"more like {source.path} (page {source.page})"
        return self.finish(label, "like", list(active), active, started, hits, "relevance", "")

    def ranked_hits(self, mode: str, active: dict[str, float], encoded: Encoding | None,
                    keyword_job: Future[dict[int, float]] | None, pool: int, allowed: Restriction | None, fusion: str,
                    words: QueryWords, k: int, every_copy: bool = False) -> list[Hit]:
        """Candidates from each channel, their exact scores, the fused ranking, grouped into document hits."""
        tops = self.channel_tops(mode, active, encoded, pool, allowed)
        keyword = keyword_job.result() if keyword_job is not None else {}
        if keyword:
            tops["keyword"] = list(keyword)[:pool]
        candidates = list(dict.fromkeys(cid for top in tops.values() for cid in top))
        scores, contributions = self.exact_scores(active, encoded, keyword, candidates)
        ranked = self.rank(active, encoded, candidates, scores, fusion)
        if encoded is not None and keyword:
            ranked = stand_in_scores(ranked, scores.get("dense", {}), keyword, self.source.encoded_share)
        found_by = {channel: set(top) for channel, top in tops.items()}
        return self.group(ranked, scores, contributions, words, found_by, k, every_copy)

    def finish(self, query: str, mode: str, channels: list[str], weights: dict[str, float], started: float,
               hits: list[Hit], sort: str, note: str, ranked_by: str = "") -> SearchResult:
        """The result, sorted as asked; ``note`` says why there are no hits, ``ranked_by`` (always kept)
        how these were ranked when not as asked."""
        if sort == "date":
            hits.sort(key=lambda hit: hit.mtime, reverse=True)
        elif sort == "name":
            hits.sort(key=lambda hit: (os.path.basename(hit.path).lower(), hit.path))
        took = (time.perf_counter() - started) * 1000
        why_none = note if not hits else ""
        return SearchResult(query, mode, channels, weights, round(took, 2), hits,
                            " — ".join(part for part in (ranked_by, why_none) if part))

    def file_listing(self, allowed: Restriction | None, k: int, every_copy: bool = False) -> list[Hit]:
        """A query made only of filters: the matching documents, newest first, each at its first chunk (its
        newest copy standing for the others)."""
        if allowed is None:
            return []
        newest = self.source.listing(allowed, k if every_copy else LISTING_COPIES_DEPTH * k)
        copies = self.source.copies([row.path for row in newest])
        hits: dict[str | int, Hit] = {}
        for row in newest:
            group = document_of(copies, row.path, every_copy)
            if group not in hits and len(hits) < k:
                hits[group] = with_copies(Hit(row.path, row.page, 0.0, {}, make_snippet(row.text, []), [], row.id,
                                              row.start, row.end, mtime=iso_time(row.mtime_ns), size=row.size,
                                              unit=row.unit, ocr=row.ocr), copies)
        return list(hits.values())

    def keyword_scores(self, text: str, allowed: Restriction | None = None) -> dict[int, float]:
        """BM25 of the best ``KEYWORD_DEPTH`` keyword matches, best first; deeper matches count as 0."""
        return dict(self.source.keyword_top(text, KEYWORD_DEPTH, allowed))

    def channel_tops(self, mode: str, active: dict[str, float], encoded: Encoding | None, pool: int,
                     allowed: Restriction | None = None) -> dict[str, list[int]]:
        """The dense and sparse channels' top ``pool`` chunks; with the keyword channel's, their union
        is what gets exact scores.

        With ``allowed`` (filters, phrases, exclusions) each channel searches inside it.
        """
        tops: dict[str, list[int]] = {}
        if encoded is not None:
            dense = encoded.dense if "dense" in active or mode == "colbert" else None
            sparse = encoded.sparse if "sparse" in active or mode == "colbert" else None
            if dense is not None or sparse is not None:
                tops = self.source.candidates(dense, sparse, pool, allowed)
        return tops

    def exact_scores(self, active: dict[str, float], encoded: Encoding | None, keyword: dict[int, float],
                     ids: list[int]) -> tuple[dict[str, dict[int, float]], dict[int, dict[int, float]]]:
        """Every channel's exact score for every candidate, plus per-token sparse contributions."""
        scores: dict[str, dict[int, float]] = {}
        contributions: dict[int, dict[int, float]] = {}
        if encoded is not None:
            vectors = self.source.dense_of(ids)
            scores["dense"] = {cid: float(vectors[cid] @ encoded.dense) for cid in ids if cid in vectors}
            weights = self.source.sparse_weights(ids, encoded.sparse)
            for cid, doc in weights.items():
                contributions[cid] = {t: encoded.sparse[t] * w for t, w in doc.items()}
            scores["sparse"] = {cid: sum(parts.values()) for cid, parts in contributions.items()}
        if "keyword" in active:
            scores["keyword"] = {cid: keyword.get(cid, 0.0) for cid in ids}
        return scores, contributions

    def rank(self, active: dict[str, float], encoded: Encoding | None, ids: list[int],
             scores: dict[str, dict[int, float]], fusion: str) -> list[tuple[int, float]]:
        """Candidates best first; ColBERT re-scores the head of a first ranking without it."""
        if "colbert" not in active:
            return sorted(fuse(scores, active, ids, fusion).items(), key=lambda item: -item[1])
        first_pass = {c: w for c, w in active.items() if c != "colbert"} or {"dense": 1.0, "sparse": 1.0}
        order = sorted(fuse(scores, first_pass, ids, fusion).items(), key=lambda item: -item[1])
        rows = self.source.rows([cid for cid, _ in order[:COLBERT_RERANK]])
        # Another process may have deleted some of them since the candidates were found.
        head = [cid for cid, _ in order[:COLBERT_RERANK] if cid in rows]
        stored = self.source.colbert_of(head)  # multi-vectors the index keeps; the others are encoded now
        todo = [c for c in head if c not in stored]
        stored.update((c, d.colbert) for c, d in zip(todo, self.encoder.encode([rows[c].text for c in todo],
                                                                                colbert=True)))
        scores["colbert"] = {c: colbert_score(encoded.colbert, stored[c]) for c in head}
        reranked = sorted(fuse(scores, active, head, fusion).items(), key=lambda item: -item[1])
        return reranked + order[COLBERT_RERANK:]

    def group(self, ranked: list[tuple[int, float]], scores: dict[str, dict[int, float]],
              contributions: dict[int, dict[int, float]], words: QueryWords, found_by: dict[str, set[int]],
              k: int, every_copy: bool = False) -> list[Hit]:
        """One hit per document, best chunk first; later chunks of the same file fold under it. A document's
        copies (the same or nearly the same text elsewhere) are one hit at its best copy, naming the others,
        unless ``every_copy``.

        Grouping needs only each candidate's file; the rows (text, snippet, terms) are read for the chunks
        shown, a tenth of the candidates. Chunks deleted by another process since they were ranked are skipped.
        """
        paths = self.source.paths([cid for cid, _ in ranked])
        copies = self.source.copies(list(set(paths.values())))
        shown: dict[str | int, list[tuple[int, float]]] = {}  # document -> its best chunk, then those folded under it
        for cid, score in ranked:
            path = paths.get(cid)
            if path is None:
                continue
            group = document_of(copies, path, every_copy)
            chunks = shown.get(group)
            if chunks is None:
                if len(shown) < k:
                    shown[group] = [(cid, score)]
            elif paths[chunks[0][0]] == path and len(chunks) <= MORE_PER_FILE:
                chunks.append((cid, score))  # a copy of a document already shown is named on its hit instead
        rows = self.source.rows([cid for chunks in shown.values() for cid, _ in chunks])
        hits = []
        for chunks in shown.values():
            found = [(rows[cid], score) for cid, score in chunks if cid in rows]
            if not found:
                continue
            (row, score), *more = found
            terms = words.found_in(row.text, contributions.get(row.id, {}))
            hit = with_copies(Hit(row.path, row.page, round(score, 6), self._channel_scores(scores, row.id),
                                  make_snippet(row.text, terms), terms, row.id, row.start, row.end,
                                  found_by=_found_by(found_by, row.id), mtime=iso_time(row.mtime_ns), size=row.size,
                                  unit=row.unit, ocr=row.ocr, pending=row.meaning == "pending",
                                  meaning=meaning_of(row)), copies)
            for row, score in more:
                terms = words.found_in(row.text, contributions.get(row.id, {}))
                hit.more.append(ChunkHit(row.id, row.page, row.start, row.end, round(score, 6),
                                         self._channel_scores(scores, row.id), make_snippet(row.text, terms), terms,
                                         found_by=_found_by(found_by, row.id), ocr=row.ocr))
            hits.append(hit)
        return hits

    @staticmethod
    def _channel_scores(scores: dict[str, dict[int, float]], cid: int) -> dict[str, float | None]:
        channel_scores = {name: scores.get(name, {}).get(cid) for name in ("dense", "sparse", "colbert")}
        if "keyword" in scores:
            channel_scores["keyword"] = scores["keyword"].get(cid)
        return rounded(channel_scores)


def _found_by(found_by: dict[str, set[int]], cid: int) -> list[str]:
    """The channels whose own top candidates held the chunk."""
    return [name for name, top in found_by.items() if cid in top]


def document_of(copies: dict[str, CopyGroup], path: str, every_copy: bool) -> str | int:
    """What one hit stands for: the copy group of ``path``, or the file itself (no copies, or ``every_copy``)."""
    group = copies.get(path)
    return path if every_copy or group is None else group.label


def with_copies(hit: Hit, copies: dict[str, CopyGroup]) -> Hit:
    """``hit`` naming where else its document is."""
    group = copies.get(hit.path)
    if group is not None:
        hit.duplicates, hit.duplicates_total = group.others(hit.path), group.total - 1
    return hit
