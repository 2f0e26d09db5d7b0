"""query -> candidates from each channel -> exact per-channel scores -> fused, grouped hits.

Candidates are the union of hnswlib's top K and the sparse postings' top K (plus FTS5 when
keyword search takes part). Every candidate then gets every active channel's exact score,
so fusion never mixes an approximate score with an exact one. Channels are put on a common
scale by dividing by the best candidate's score for that query: raw BGE-M3 scales differ
between channels and between models (the lite model's sparse head is not calibrated).
"""

from __future__ import annotations

import re
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

from desktop_app.core.config import MODES, Weights
from desktop_app.core.encoder import Encoder, Encoding
from desktop_app.core.errors import UsageError
from desktop_app.core.index import Index
from desktop_app.core.store import ChunkRow, Store

FUSIONS = ("max", "raw")
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

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["hits"] = [hit.to_dict() for hit in self.hits]
        return data


def validate_query(query: str) -> str:
    text = query.strip()
    if not text:
        raise UsageError("the query is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise UsageError(f"the query is too long ({len(text):,} characters; the limit is {MAX_QUERY_CHARS:,})")
    if not WORD.search(text):
        raise UsageError("the query has no words to search for (only punctuation or symbols)")
    return text


def fts_query(text: str) -> str:
    """User text -> FTS5 syntax: "quoted phrases" must all match, other words are OR-ed."""
    phrases = re.findall(r'"([^"]+)"', text)
    rest = re.sub(r'"[^"]*"', " ", text)
    quoted = [" ".join(WORD.findall(p)) for p in phrases]
    parts = [f'"{p}"' for p in quoted if p]
    words = [f'"{w}"' for w in dict.fromkeys(WORD.findall(rest))]
    if words:
        parts.append("(" + " OR ".join(words) + ")")
    return " AND ".join(parts)


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
    lowered = text.lower()
    position = -1
    for term in terms:
        match = re.search(r"\b" + re.escape(term.lower()), lowered)
        if match:
            position = match.start()
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
        self.helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dense-query")
        weakref.finalize(self, self.helper.shutdown, wait=False)

    def channels_for(self, mode: str, weights: Weights, colbert: bool | None) -> dict[str, float]:
        """Active channels and their weights for a mode; ColBERT joins hybrid only where cheap."""
        if mode not in MODES:
            raise UsageError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        if mode != "hybrid":
            return {mode: 1.0}
        if colbert is None:
            colbert = self.encoder is not None and self.encoder.loaded and self.encoder.device.startswith("cuda")
        active = {name: w for name, w in weights.as_dict().items() if w > 0}
        if not colbert:
            active.pop("colbert", None)
        if not active:
            raise UsageError("every channel that hybrid search can use has weight 0")
        return active

    def search(self, query: str, k: int = 10, mode: str = "hybrid", weights: Weights | None = None,
               colbert: bool | None = None, fusion: str = "max") -> SearchResult:
        text = validate_query(query)
        if fusion not in FUSIONS:
            raise UsageError(f"unknown fusion {fusion!r}: use one of {', '.join(FUSIONS)}")
        if not 1 <= k <= MAX_K:
            raise UsageError(f"k must be between 1 and {MAX_K} (got {k})")
        if mode != "keyword" and self.encoder is not None:
            self.encoder.load()
        started = time.perf_counter()
        active = self.channels_for(mode, weights or Weights(), colbert)
        needs_model = mode != "keyword" and set(active) != {"keyword"}
        encoded = self.encoder.encode([text], QUERY_MAX_TOKENS, colbert="colbert" in active)[0] if needs_model else None
        pool = max(CANDIDATES_PER_CHANNEL, 4 * k)
        keyword = self.keyword_scores(text) if "keyword" in active else {}
        candidates = self.candidates(mode, active, encoded, keyword, pool)
        scores, contributions = self.exact_scores(active, encoded, keyword, candidates)
        ranked = self.rank(active, encoded, candidates, scores, fusion)
        words = self.encoder.word_tokens(text) if encoded is not None else query_words(text)
        hits = self.group(ranked, scores, contributions, words, k)
        took = (time.perf_counter() - started) * 1000
        return SearchResult(text, mode, list(active), active, round(took, 2), hits)

    def keyword_scores(self, text: str) -> dict[int, float]:
        """BM25 of the best ``KEYWORD_DEPTH`` keyword matches, best first; deeper matches count as 0.

        FTS5 must rank every match to return the best ones anyway, while asking it for the
        BM25 of given rows (``rowid IN``) re-runs the query per row: 20x slower.
        """
        query = fts_query(text)
        return dict(self.store.keyword_top(query, KEYWORD_DEPTH)) if query else {}

    def candidates(self, mode: str, active: dict[str, float], encoded: Encoding | None,
                   keyword: dict[int, float], pool: int) -> list[int]:
        """Union of each active channel's top ``pool`` chunks. hnswlib and SQLite both release the
        GIL, so the dense query runs in a helper thread while SQLite finds the sparse top."""
        dense = None
        if encoded is not None and ("dense" in active or mode == "colbert"):
            dense = self.helper.submit(self.index.vectors.query, encoded.dense, min(pool, self.store.chunk_count()))
        sparse = []
        if encoded is not None and ("sparse" in active or mode == "colbert"):
            sparse = self.store.sparse_top(encoded.sparse, pool)
        found = dict.fromkeys(cid for cid, _ in (dense.result() if dense is not None else []))
        found.update(dict.fromkeys(cid for cid, _ in sparse))
        found.update(dict.fromkeys(list(keyword)[:pool]))
        return list(found)

    def exact_scores(self, active: dict[str, float], encoded: Encoding | None, keyword: dict[int, float],
                     ids: list[int]) -> tuple[dict[str, dict[int, float]], dict[int, dict[int, float]]]:
        """Every channel's exact score for every candidate, plus per-token sparse contributions."""
        scores: dict[str, dict[int, float]] = {}
        contributions: dict[int, dict[int, float]] = {}
        if encoded is not None:
            vectors = self.store.dense_for(ids)
            scores["dense"] = {cid: float(vectors[cid] @ encoded.dense) for cid in ids if cid in vectors}
            weights = self.store.sparse_weights(ids, encoded.sparse)
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
        head = [cid for cid, _ in order[:COLBERT_RERANK]]
        rows = self.store.chunk_rows(head)
        documents = self.encoder.encode([rows[c].text for c in head], colbert=True)
        scores["colbert"] = {c: colbert_score(encoded.colbert, d.colbert) for c, d in zip(head, documents)}
        reranked = sorted(fuse(scores, active, head, fusion).items(), key=lambda item: -item[1])
        return reranked + order[COLBERT_RERANK:]

    def group(self, ranked: list[tuple[int, float]], scores: dict[str, dict[int, float]],
              contributions: dict[int, dict[int, float]], words: dict[str, set[int]], k: int) -> list[Hit]:
        """One hit per file, best chunk first; later chunks of the same file fold under it."""
        rows = self.store.chunk_rows([cid for cid, _ in ranked])
        by_path: dict[str, Hit] = {}
        for cid, score in ranked:
            row = rows.get(cid)
            if row is None:
                continue
            channel_scores = {name: scores.get(name, {}).get(cid) for name in ("dense", "sparse", "colbert")}
            if "keyword" in scores:
                channel_scores["keyword"] = scores["keyword"].get(cid)
            hit = by_path.get(row.path)
            if hit is None:
                if len(by_path) == k:
                    continue
                terms = self.terms(contributions.get(cid, {}), row, words)
                by_path[row.path] = Hit(row.path, row.page, round(score, 6), rounded(channel_scores),
                                        make_snippet(row.text, terms), terms, cid, row.start, row.end)
            elif len(hit.more) < MORE_PER_FILE:
                terms = self.terms(contributions.get(cid, {}), row, words)
                hit.more.append(ChunkHit(cid, row.page, row.start, row.end, round(score, 6),
                                         rounded(channel_scores), make_snippet(row.text, terms), terms))
        return list(by_path.values())

    def terms(self, contribution: dict[int, float], row: ChunkRow, words: dict[str, set[int]]) -> list[str]:
        """Query words ranked by how much their tokens' q_w * d_w added to this chunk's score.

        Words adding under a tenth of the best word's share (stop words, mostly) are left out.

        Without lexical contributions (keyword mode) the query words found in the chunk count.
        """
        if contribution:
            scored = {word: sum(contribution.get(t, 0.0) for t in tokens) for word, tokens in words.items()}
            floor = TERM_SHARE_OF_BEST * max(scored.values(), default=0.0)
            ranked = sorted((w for w, score in scored.items() if score > floor), key=lambda w: -scored[w])
            return ranked[:TOP_TERMS]
        text = row.text.lower()
        return [w for w in words if len(w) > 1 and re.search(r"\b" + re.escape(w), text)][:TOP_TERMS]


def query_words(text: str) -> dict[str, set[int]]:
    """The query's distinct words, for modes that run without the model's tokenizer."""
    return {word: set() for word in dict.fromkeys(WORD.findall(text.lower()))}


def rounded(values: dict[str, float | None]) -> dict[str, float | None]:
    return {k: (round(v, 6) if v is not None else None) for k, v in values.items()}
