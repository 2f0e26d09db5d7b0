"""query -> candidates from each channel -> exact per-channel scores -> fused, grouped hits.

Candidates are the union of each channel's top K: dense, sparse and (when keyword search takes
part) BM25, asked of the index's source (:mod:`desktop_app.core.backends.local.source`, or a Qdrant
collection). Every candidate then gets every active channel's exact score, so fusion never
mixes an approximate score with an exact one. Channels are put on a common
scale by dividing by the best candidate's score for that query: raw BGE-M3 scales differ
between channels and between models (the lite model's sparse head is not calibrated).

A mixed index (stage 2 still encoding, or a file past its meaning cap) holds chunks with words
only. Hybrid search then also asks the keyword channel, and a chunk without vectors stands in
with the fused score that encoded chunks get at its keyword score: see :func:`stand_in_scores`
and bench/README.md ("Search over a mixed index").
"""

from __future__ import annotations

import os
import re
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from desktop_app.core import analyze
from desktop_app.core.config import BGE_M3_WEIGHTS, MODES, Weights, default_weights
from desktop_app.core.errors import IndexMismatchError, UsageError
from desktop_app.core.ingest.extract.base import place_of
from desktop_app.core.model.encoder import Encoder, Encoding
from desktop_app.core.model.resolve import TRAINED_CHANNELS, trusted_channels
from desktop_app.core.search.query import Filters, Query
from desktop_app.core.search.query import parse as parse_query
from desktop_app.core.storage.store import ChunkRow, Store

if TYPE_CHECKING:
    from desktop_app.core.backends.protocol import Index, Restriction

FUSIONS = ("max", "raw")
# A mixed index's stand-in scores come from a line fitted to at least this many encoded candidates.
MIN_CALIBRATION_PAIRS = 5
MODEL_LOADING_NOTE = "ranked by words; meaning-based ranking in a moment (the model is loading)"
CACHES_LOADING_NOTE = "ranked by words; meaning-based ranking in a moment (the index is opening)"
MAX_QUERY_CHARS = 2000
MAX_K = 1000
CANDIDATES_PER_CHANNEL = 100
COLBERT_RERANK = 30
KEYWORD_DEPTH = 1000
MORE_PER_FILE = 3
TOP_TERMS = 5
TERM_SHARE_OF_BEST = 0.1
SNIPPET_CHARS = 280
QUERY_MAX_TOKENS = 512
WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class ChunkHit:
    chunk_id: int
    page: int
    start: int
    end: int
    score: float
    scores: dict[str, float | None]
    snippet: str = ""
    terms: list[str] = field(default_factory=list)
    found_by: list[str] = field(default_factory=list)
    ocr: bool = False


@dataclass
class Hit:
    """The best chunk of one file, with the file's other matching chunks folded under it."""

    path: str
    page: int
    score: float
    scores: dict[str, float | None]
    snippet: str
    terms: list[str]
    chunk_id: int
    start: int
    end: int
    more: list[ChunkHit] = field(default_factory=list)
    # The channels whose own top candidates held this chunk; dense alone means "by meaning".
    found_by: list[str] = field(default_factory=list)
    mtime: str = ""  # the file's modification time, ISO 8601 (local time with its offset)
    size: int = 0
    unit: str = "page"  # what ``page`` counts: page, slide, sheet, chapter, message, image
    ocr: bool = False  # the text was read from an image of the page
    pending: bool = False  # found by its words; its vectors are not made yet
    without_phrase: bool = False  # ranked after the hits that hold the query's exact phrase, without it
    meaning: str = ""  # why it was ranked without meaning, in words ("meaning pending", ...)

    @property
    def place(self) -> str:
        return place_of(self.unit, self.page)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class SearchResult:
    query: str
    mode: str
    channels: list[str]
    weights: dict[str, float]
    took_ms: float
    hits: list[Hit]
    # Why there are no hits (a filter, phrase or exclusion removed everything), or why they were
    # ranked otherwise than asked (by words while the model loads).
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["hits"] = [hit.to_dict() for hit in self.hits]
        return data


SORTS = ("relevance", "date", "name")


def validate_query(query: str, extra: Filters | None = None, roots: list[str] | None = None) -> Query:
    """Parse the user's text (``in:`` relative to ``roots``); empty, overlong, wordless or malformed
    queries are usage errors."""
    text = query.strip()
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


def colbert_score(query: np.ndarray, document: np.ndarray) -> float:
    """BGE-M3's late interaction: mean over query tokens of the best document-token match."""
    if len(query) == 0 or len(document) == 0:
        return 0.0
    return float((query @ document.T).max(axis=1).sum() / len(query))


def fuse(scores: dict[str, dict[int, float]], weights: dict[str, float], ids: list[int],
         fusion: str = "max") -> dict[int, float]:
    """Weighted mean of per-channel scores over ``ids``.

    ``max`` divides each channel by its best score among ``ids`` first (scales differ per
    model and channel); ``raw`` is BGE-M3's own ``compute_score`` weighted sum.
    """
    total = sum(weights.values())
    fused = dict.fromkeys(ids, 0.0)
    for channel, weight in weights.items():
        values = scores.get(channel, {})
        scale = 1.0
        if fusion == "max":
            best = max((values.get(i, 0.0) for i in ids), default=0.0)
            if best <= 0:
                continue
            scale = 1.0 / best
        for i in ids:
            fused[i] += weight / total * values.get(i, 0.0) * scale
    return fused


def make_snippet(text: str, terms: list[str], width: int = SNIPPET_CHARS) -> str:
    """About ``width`` characters of ``text`` around the first occurrence of the best term."""
    position = -1
    for term in terms:
        position = analyze.first_match(text, set(analyze.terms(term)))
        if position >= 0:
            break
    if len(text) <= width:
        return text
    start = 0 if position < 0 else max(0, position - width // 3)
    end = min(len(text), start + width)
    start = max(0, end - width)
    if start > 0:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 20 else start
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > end - 20 else end
    return ("…" if start > 0 else "") + text[start:end].strip() + ("…" if end < len(text) else "")


class Searcher:
    """Runs searches against one open index with one encoder (loaded on first need)."""

    def __init__(self, index: Index, encoder: Encoder | None, store: Store | None = None) -> None:
        """``store`` may be a separate read connection, so searches never see a writer's open transaction."""
        self.index = index
        self.store = store or index.store
        self.encoder = encoder
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
            raise UsageError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
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
            raise UsageError(f"unknown fusion {fusion!r}: use one of {', '.join(FUSIONS)}")
        if sort not in SORTS:
            raise UsageError(f"unknown sort {sort!r}: use one of {', '.join(SORTS)}")
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
        if not WORD.search(text):
            hits = self.file_listing(allowed, k)
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
        encoded = self.encoder.encode([text], QUERY_MAX_TOKENS, colbert="colbert" in active)[0] if needs_model else None
        pool = max(CANDIDATES_PER_CHANNEL, 4 * k)
        words = QueryWords(text, self.encoder.word_tokens(text) if encoded is not None else {})
        hits = [] if note else self.ranked_hits(mode, active, encoded, keyword, pool, allowed, fusion, words, k)
        if parsed.phrases and len(hits) < k:
            # Few hold the exact phrase (often a question pasted with quotes): the rest come from the
            # ranking without it, marked, as web search engines do.
            loose = Query(text, (), parsed.excluded, parsed.filters)
            loose_allowed, loose_note = self.source.restrict(loose) if loose.restricts else (None, "")
            if not loose_note:
                more = self.ranked_hits(mode, active, encoded, keyword_job(loose_allowed), pool, loose_allowed,
                                        fusion, words, k)
                have = {hit.path for hit in hits}
                for hit in more:
                    if hit.path not in have and len(hits) < k:
                        hit.without_phrase = True
                        hits.append(hit)
                if note and hits:  # say why none of them holds the phrase
                    by_words = "; ".join(part for part in (by_words, f"{note}: these hits do not hold it")
                                         if part)
        return self.finish(query.strip(), mode, list(active), active, started, hits, sort, note, by_words)

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
        hits = [hit for hit in hits if hit.path != source.path][:k]
        label = f"more like {source.path} (page {source.page})"
        return self.finish(label, "like", list(active), active, started, hits, "relevance", "")

    def ranked_hits(self, mode: str, active: dict[str, float], encoded: Encoding | None,
                    keyword_job: Future[dict[int, float]] | None, pool: int, allowed: Restriction | None, fusion: str,
                    words: QueryWords, k: int) -> list[Hit]:
        """Candidates from each channel, their exact scores, the fused ranking, grouped into file hits."""
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
        return self.group(ranked, scores, contributions, words, found_by, k)

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

    def file_listing(self, allowed: Restriction | None, k: int) -> list[Hit]:
        """A query made only of filters: the matching files, newest first, each at its first chunk."""
        if allowed is None:
            return []
        newest = self.source.listing(allowed, k)
        return [Hit(row.path, row.page, 0.0, {}, make_snippet(row.text, []), [], row.id, row.start, row.end,
                    mtime=iso_time(row.mtime_ns), size=row.size, unit=row.unit, ocr=row.ocr) for row in newest]

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
              k: int) -> list[Hit]:
        """One hit per file, best chunk first; later chunks of the same file fold under it.

        Chunks deleted by another process since they were ranked have no row and are skipped.
        """
        rows = self.source.rows([cid for cid, _ in ranked])
        by_path: dict[str, Hit] = {}
        for cid, score in ranked:
            row = rows.get(cid)
            if row is None:
                continue
            channel_scores = {name: scores.get(name, {}).get(cid) for name in ("dense", "sparse", "colbert")}
            if "keyword" in scores:
                channel_scores["keyword"] = scores["keyword"].get(cid)
            hit = by_path.get(row.path)
            if hit is None and len(by_path) == k:
                continue
            if hit is not None and len(hit.more) >= MORE_PER_FILE:
                continue
            terms = words.found_in(row.text, contributions.get(cid, {}))
            channels = [name for name, top in found_by.items() if cid in top]
            snippet = make_snippet(row.text, terms)
            if hit is None:
                by_path[row.path] = Hit(row.path, row.page, round(score, 6), rounded(channel_scores), snippet,
                                        terms, cid, row.start, row.end, found_by=channels,
                                        mtime=iso_time(row.mtime_ns), size=row.size, unit=row.unit, ocr=row.ocr,
                                        pending=row.meaning == "pending", meaning=meaning_of(row))
            else:
                hit.more.append(ChunkHit(cid, row.page, row.start, row.end, round(score, 6),
                                         rounded(channel_scores), snippet, terms, found_by=channels, ocr=row.ocr))
        return list(by_path.values())


def stand_in_scores(ranked: list[tuple[int, float]], dense: dict[int, float],
                    keyword: dict[int, float], encoded_share: float = 1.0) -> list[tuple[int, float]]:
    """The ranking of a mixed index: a chunk with vectors keeps its fused score; one without them (no
    dense score) stands in with the fused score that chunks with vectors get, in this query, at its
    keyword score: a line fitted by least squares to the (keyword, fused) pairs of the encoded
    candidates that hold a query word, keyword scores taken over the best among the candidates.

    Every candidate's score is then blended with its keyword score by the index's share of encoded
    chunks (``encoded_share``): while few are encoded, a line fitted to few is noisy and words lead.
    So with nothing encoded hybrid ranks exactly as keyword search does, with everything encoded
    exactly as before, and in between a chunk without vectors ranks where an average chunk with
    its words would.
    """
    unencoded = [cid for cid, _ in ranked if cid not in dense]
    if not unencoded:
        return ranked
    best = max(keyword.values(), default=0.0)
    if best <= 0:
        return ranked
    pairs = np.array([(keyword[cid] / best, score) for cid, score in ranked
                      if cid in dense and keyword.get(cid, 0.0) > 0])
    slope, intercept = 1.0, 0.0
    if len(pairs) >= MIN_CALIBRATION_PAIRS and np.ptp(pairs[:, 0]) > 0:
        fitted_slope, fitted_intercept = np.polyfit(pairs[:, 0], pairs[:, 1], 1)
        if fitted_slope > 0:
            slope, intercept = float(fitted_slope), float(fitted_intercept)
    stand_in = {cid: intercept + slope * keyword.get(cid, 0.0) / best for cid in unencoded}
    share = min(max(encoded_share, 0.0), 1.0)
    return sorted(((cid, (1 - share) * keyword.get(cid, 0.0) / best + share * stand_in.get(cid, score))
                   for cid, score in ranked), key=lambda item: -item[1])


def meaning_of(row: ChunkRow) -> str:
    """What a hit says when it was ranked by its words alone."""
    if row.meaning == "pending":
        return "meaning pending"
    if row.meaning == "capped":
        return f"meaning: first {row.meaning_cap:,} chunks of this file; this part by its words"
    return ""


class QueryWords:
    """The query's words as a reader sees them, to tell which of them a chunk really contains.

    A word counts for a chunk only if the chunk holds one of its keyword terms (the same
    analysis as the keyword index: stems, folded accents, CJK bigrams), so a hit found by
    meaning alone gets no invented terms. Found words are ranked by their tokens' share of the
    chunk's lexical score (``q_w * d_w``) where the model gave one, else kept in query order;
    words adding under a tenth of the best word's share are left out.
    """

    def __init__(self, text: str, tokens: dict[str, set[int]]) -> None:
        self.words: dict[str, set[str]] = {}
        for word in analyze.words(text):
            if word.terms:
                self.words.setdefault(word.text.lower(), set()).update(word.terms)
        self.tokens = tokens

    def found_in(self, text: str, contribution: dict[int, float]) -> list[str]:
        present = set(analyze.terms(text))
        found = [word for word, terms in self.words.items() if present & terms]
        if contribution:
            share = {w: sum(contribution.get(t, 0.0) for t in self.tokens.get(w, ())) for w in found}
            floor = TERM_SHARE_OF_BEST * max(share.values(), default=0.0)
            found = sorted((w for w in found if share[w] >= floor), key=lambda w: -share[w])
        return found[:TOP_TERMS]


def iso_time(mtime_ns: int) -> str:
    """A file time as ISO 8601 in local time with its UTC offset."""
    return datetime.fromtimestamp(mtime_ns / 1e9).astimezone().isoformat(timespec="seconds")


def rounded(values: dict[str, float | None]) -> dict[str, float | None]:
    return {k: (round(v, 6) if v is not None else None) for k, v in values.items()}
