"""The search box's syntax: words, "phrases", -exclusions, OR, and filters on the files.

| operator | meaning |
| --- | --- |
| ``"exact phrase"`` | hits that hold the phrase first (every mode); then the rest, marked |
| ``-word``, ``-"a phrase"`` | drop hits that hold it |
| ``a OR b`` | keyword channel: either word (it matches any query word already; OR is not searched) |
| ``ext:pdf``, ``type:pdf`` | by extension; repeat for either |
| ``in:PATH`` | files under that folder (absolute, ``~``, or relative to an indexed folder) |
| ``name:TEXT`` | the file name contains TEXT (case-insensitive) |
| ``after:YYYY-MM-DD``, ``before:YYYY-MM-DD`` | by the file's modification date (local days) |
| ``dup:show`` | every copy of a document as its own hit (by default copies are one hit naming the others) |

When fewer than k hits hold a phrase, the rest of the top k come from the ranking without it,
marked; one quoted word among other words is ranked, not required (prose's scare quotes).
Phrases and exclusions match the keyword index's terms (stems, folded accents), so ``-draft``
also drops "drafts". A malformed operator is a :class:`UsageError`, never an empty result.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime

from desktop_app.core import analyze
from desktop_app.core.errors import UsageError, shown

SYNTAX_HELP = """\
<table cellspacing=4>
<tr><td><code>"exact phrase"</code></td><td>hits that hold the phrase first</td></tr>
<tr><td><code>-word</code>, <code>-"a phrase"</code></td><td>drop hits that hold it</td></tr>
<tr><td><code>a OR b</code></td><td>keyword search: either word</td></tr>
<tr><td><code>ext:pdf</code>, <code>type:docx</code></td><td>by file type; repeat for either</td></tr>
<tr><td><code>in:Reports</code></td><td>files under a folder (absolute, ~, or inside an indexed folder)</td></tr>
<tr><td><code>name:invoice</code></td><td>the file name contains the text</td></tr>
<tr><td><code>after:2024-01-31</code>, <code>before:2024-12-31</code></td><td>by the file's modification day</td></tr>
<tr><td><code>dup:show</code></td><td>every copy of a document as its own hit</td></tr>
</table><p>Filters alone (<code>ext:pdf in:Reports</code>) list the matching files, newest first.</p>"""
TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
FILTER_KEYS = ("ext", "type", "in", "name", "after", "before", "dup")
FILTER = re.compile(rf"^({'|'.join(FILTER_KEYS)}):(.*)$", re.IGNORECASE)
SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Filters:
    """Conditions on the files a hit may come from; all must hold (several ``ext:`` or ``in:`` are either).
    ``every_copy`` restricts nothing: it shows each copy of a document as its own hit."""

    extensions: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    after: float | None = None
    before: float | None = None
    every_copy: bool = False

    @property
    def active(self) -> bool:
        return bool(self.extensions or self.folders or self.names or self.after is not None
                    or self.before is not None)

    def merged(self, other: Filters) -> Filters:
        """These filters and ``other``'s (the CLI's flags beside the operators in the query)."""
        return Filters(self.extensions + other.extensions, self.folders + other.folders, self.names + other.names,
                       max((t for t in (self.after, other.after) if t is not None), default=None),
                       min((t for t in (self.before, other.before) if t is not None), default=None),
                       self.every_copy or other.every_copy)

    def describe(self) -> list[str]:
        """Each filter as the user would type it, for messages."""
        parts = [f"ext:{e.lstrip('.')}" for e in self.extensions] + [f"in:{f}" for f in self.folders]
        parts += [f"name:{n}" for n in self.names]
        if self.after is not None:
            parts.append("after:" + time.strftime("%Y-%m-%d", time.localtime(self.after)))
        if self.before is not None:
            parts.append("before:" + time.strftime("%Y-%m-%d", time.localtime(self.before)))
        if self.every_copy:
            parts.append("dup:show")
        return parts


@dataclass(frozen=True)
class Query:
    """A parsed query: ``text`` is what the channels rank (words and phrases, no operators)."""

    text: str
    phrases: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    filters: Filters = field(default_factory=Filters)

    @property
    def restricts(self) -> bool:
        """True when hits must pass more than the ranking: phrases, exclusions or file filters."""
        return bool(self.phrases or self.excluded or self.filters.active)


def parse(raw: str, roots: list[str] | None = None) -> Query:
    """Split the user's text into ranked text, phrase and exclusion conditions, and file filters."""
    words: list[str] = []
    phrases: list[str] = []
    excluded: list[str] = []
    options: dict[str, list[str]] = {key: [] for key in FILTER_KEYS}
    for match in TOKEN.finditer(raw):
        negated, quoted, bare = match.group(1), match.group(2), match.group(3)
        if quoted is not None:
            phrase = " ".join(quoted.split())
            if phrase:
                (excluded if negated else phrases).append(phrase)
                if not negated:
                    words.append(f'"{phrase}"')
            continue
        if bare == "OR":
            continue
        operator = FILTER.match(bare)
        if operator:
            options[operator.group(1).lower()].append(operator.group(2))
        elif bare.startswith("-") and re.search(r"\w", bare[1:]):
            excluded.append(bare[1:])
        else:
            words.append(bare)
    if len(words) > 1:  # one quoted word among others is emphasis ('does it "match"'), not a condition
        phrases = [phrase for phrase in phrases if len(analyze.terms(phrase)) > 1]
    return Query(" ".join(words), tuple(phrases), tuple(excluded), filters_from(options, roots or []))


def require_text(value: str, what: str) -> str:
    """``value`` when it is text; a lone surrogate is a usage error. Python makes one of bytes that are not
    UTF-8 (an argument, a file name), JSON of ``"\\ud800"``; SQLite, the tokenizer and the stemmer take none."""
    found = SURROGATE.search(value)
    if found:
        raise UsageError(f"{what} holds {ascii(found.group())}, which is not a character (bytes that were not "
                         "valid UTF-8?): type it again or leave it out")
    return value


def filters_from(options: dict[str, list[str]], roots: list[str]) -> Filters:
    """The ``key:value`` operators (or the CLI's flags) as :class:`Filters`; malformed ones are usage errors."""
    for key, values in options.items():
        for value in values:
            require_text(value, f"{key}:")
            if not value.strip():
                raise UsageError(f"{key}: needs a value, e.g. {example(key)}")
    extensions = tuple(dict.fromkeys("." + v.lower().lstrip(".") for v in options.get("ext", []) +
                                     options.get("type", [])))
    folders = tuple(dict.fromkeys(f for value in options.get("in", []) for f in folder_paths(value, roots)))
    names = tuple(v.lower() for v in options.get("name", []))
    after = max((day_start(v, "after") for v in options.get("after", [])), default=None)
    before = min((day_start(v, "before") for v in options.get("before", [])), default=None)
    if after is not None and before is not None and after >= before:
        raise UsageError("after: must be an earlier day than before:")
    for value in options.get("dup", []):
        if value.lower() != "show":
            raise UsageError(f"dup: takes show (got {shown(value)}): dup:show lists every copy of a document")
    return Filters(extensions, folders, names, after, before, bool(options.get("dup")))


def example(key: str) -> str:
    return {"ext": "ext:pdf", "type": "type:pdf", "in": "in:~/Reports", "name": "name:invoice",
            "after": "after:2024-01-31", "before": "before:2024-12-31", "dup": "dup:show"}[key]


def day_start(value: str, key: str) -> float:
    """Local midnight of a ``YYYY-MM-DD`` day, as a timestamp."""
    try:
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise UsageError(f"{key}: needs a date as YYYY-MM-DD (got {shown(value)}), e.g. {example(key)}") from None
    try:
        return day.timestamp()
    except (ValueError, OverflowError, OSError):  # 0001-01-01: Python's clock starts a day later; Windows' in 1970
        raise UsageError(f"{key}: {value} is further back or ahead than this computer's clock can count, "
                         f"e.g. {example(key)}") from None


def folder_paths(value: str, roots: list[str]) -> list[str]:
    """An ``in:`` value as absolute folder paths: itself when absolute (or ``~``), else under each indexed folder."""
    expanded = os.path.expanduser(value)
    if os.path.isabs(expanded):
        return [os.path.normpath(expanded)]
    return [os.path.normpath(os.path.join(root, expanded)) for root in roots] or [os.path.abspath(expanded)]


def phrase_note(phrase: str, filters: Filters) -> str:
    """What a search says when no indexed text holds a quoted phrase (either backend)."""
    where = f" among the files that match {' '.join(filters.describe())}" if filters.active else ""
    return f'no indexed text holds the phrase "{phrase}"{where}'
