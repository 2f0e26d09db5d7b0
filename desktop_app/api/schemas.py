"""Request bodies and their limits: what a client may ask for, checked before the engine sees it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from desktop_app.core import FUSIONS, MAX_QUERY_CHARS, MODES, SORTS

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_K = 100
MAX_PAGE = 1000
MAX_OFFSET = 1_000_000_000  # more files than an index holds; SQLite's integers end at 2**63
MAX_INDEX_PATHS = 100
MAX_PATH_CHARS = 4096
MAX_EMBED_TEXTS = 64
MAX_EMBED_CHARS = 40_000  # about 8,192 tokens, the longest input BGE-M3 takes
MAX_COLBERT_CHARS = 40_000  # per call: ColBERT gives 1,024 numbers per token
MAX_HIGHLIGHT_TEXTS = 100
MAX_HIGHLIGHT_CHARS = 10_000
MAX_TERMS = 50
MAX_TERM_CHARS = 200
MAX_JOB_ID_CHARS = 64  # a job's id is 32 hex digits; a longer one is not looked up (nor echoed back)

# Literal[a_tuple] is Literal[each of its values]: the choices stay the core's.
Mode = Literal[MODES]
Fusion = Literal[FUSIONS]
Sort = Literal[SORTS]
Term = Annotated[str, Field(max_length=MAX_TERM_CHARS)]
PathText = Annotated[str, Field(min_length=1, max_length=MAX_PATH_CHARS)]
EmbedText = Annotated[str, Field(max_length=MAX_EMBED_CHARS)]
HighlightText = Annotated[str, Field(max_length=MAX_HIGHLIGHT_CHARS)]
# A filter takes one value or a list of them, as the CLI takes a flag once or repeated.
OneOrMore = BeforeValidator(lambda value: [value] if isinstance(value, str) else value)


class Strict(BaseModel):
    """Unknown fields are an error (a misspelt option must not be ignored silently)."""

    model_config = ConfigDict(extra="forbid")


class SearchFilters(Strict):
    """The query syntax's file filters (``ext:``, ``in:``, ``name:``, ``after:``, ``before:``, ``dup:``) as fields."""

    ext: Annotated[list[Term], OneOrMore] = Field(default_factory=list, max_length=MAX_TERMS,
                                                  description="extensions, e.g. \"pdf\" or [\"pdf\", \"docx\"]")
    in_: Annotated[list[PathText], OneOrMore] = Field(default_factory=list, alias="in", max_length=MAX_TERMS,
                                                      description="folders: absolute, ~, or inside an indexed folder")
    name: Annotated[list[Term], OneOrMore] = Field(default_factory=list, max_length=MAX_TERMS,
                                                   description="the file name contains it")
    after: str | None = Field(None, description="YYYY-MM-DD: modified on or after that day")
    before: str | None = Field(None, description="YYYY-MM-DD: modified before that day")
    dup: Literal["show"] | None = Field(None, description="\"show\": every copy of a document as its own hit "
                                        "(by default copies are one hit naming the others in \"duplicates\")")

    def as_mapping(self) -> dict[str, list[str] | str | None]:
        return {"ext": self.ext, "in": self.in_, "name": self.name, "after": self.after, "before": self.before,
                "dup": self.dup}


class SearchBody(Strict):
    """What ``desktop-search search`` takes as flags; the answer is its ``--json`` document."""

    query: str = Field(max_length=MAX_QUERY_CHARS, description="words, \"phrases\", -exclusions, filters like ext:pdf")
    k: int = Field(10, ge=1, le=MAX_K, description="files to return")
    mode: Mode = "hybrid"
    weights: str | list[float] | None = Field(None, description="\"D,S,C[,K]\" or [D, S, C, K]; default: the model's")
    colbert: bool | None = Field(None, description="re-rank with ColBERT in hybrid mode (default: only on CUDA)")
    fusion: Fusion = "max"
    filters: SearchFilters = Field(default_factory=SearchFilters)
    sort: Sort = "relevance"


class IndexBody(Strict):
    paths: list[PathText] = Field(min_length=1, max_length=MAX_INDEX_PATHS,
                             description="absolute folders or files on the server's computer")
    wait: bool = Field(True, description="wait for another writer to finish (false: the job fails at once)")


class EmbedBody(Strict):
    texts: list[EmbedText] = Field(min_length=1, max_length=MAX_EMBED_TEXTS)
    return_dense: bool = True
    return_sparse: bool = True
    return_colbert: bool = False


class HighlightBody(Strict):
    texts: list[HighlightText] = Field(min_length=1, max_length=MAX_HIGHLIGHT_TEXTS)
    terms: list[Term] = Field(max_length=MAX_TERMS)


class OpenBody(Strict):
    path: PathText = Field(description="an indexed file, as search answers name it")
    page: int = Field(1, ge=1, description="where a PDF viewer should open it")
    reveal: bool = Field(False, description="show the file in its folder instead of opening it")
