"""Known-source removal: the text of mail Postdesk itself sent, taken out of a reply to it.

Pure text matching: the texts we sent are read from the store by the `known` stage
(`gateway.stages.known`). Heuristics (`gateway.mail.quotes`) guess what is quoted from how
clients mark it, and only at the end of a mail. Here nothing is guessed: Postdesk stored every mail it sent, so the text
of the mail a reply answers is known, and any line of the reply that repeats it is history,
wherever it stands (above, below or between the writer's lines) and however it is marked
(`>`, a tab or spaces, nothing at all, an HTML quote rendered as text).

Lines are compared as word sequences, so quote markers, re-wrapping by the client and
punctuation do not matter: a line is known when its words occur, in order and contiguous, in
a text we sent. A short known line standing alone and unmarked ("Thanks," "Hej Anna,") is the
writer's own and stays; a quoted one, or one in a run of known lines, goes. The attribution
or Outlook header block right above a removed run goes with it.

This module also owns the last guard on relayed text: whether it still holds the words of an
internal note (`internal_words`).
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.mail.htmltext import html_to_text
from gateway.mail.quotes import Reply, split_reply

_WORD = re.compile(r"\w+")
_QUOTE_MARK = re.compile(r"^[ \t]*(?:>[ \t]?)+|^(?:\t| {2,})")
# What stands above quoted history: "On … wrote:", "Den … skrev:", a colon-ended line, or an
# Outlook header block ("From: …", "Sent: …") with its rule of underscores or dashes.
_HEADER_LINE = re.compile(r"^\s*\*?[\w .-]{1,24}\*?\s*:\s*\S")
_SEPARATOR = re.compile(r"^\s*(?:[-_=]{3,}.*|-{2,}\s*[\w ]{1,40}\s*-{2,})\s*$")
# A run of known lines shorter than this many words, unmarked, may be the writer's own words.
RUN_WORDS = 5
_ABOVE_LINES = 8
# A note line of fewer words is too common to prove a leak ("ok", "VIP").
NOTE_WORDS = 3



def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


@dataclass(frozen=True)
class Known:
    """The words of the texts we sent, searchable for a line's words in order."""

    # All texts' words in one list, a None between texts so that no match spans two of them,
    # and where each word stands: a line is checked only where its rarest word occurs.
    stream: tuple[str | None, ...]
    where: dict[str, list[int]]

    @classmethod
    def of(cls, texts: Iterable[str]) -> Known:
        stream: list[str | None] = []
        for text in texts:
            stream += [*words(text), None]
        where: dict[str, list[int]] = {}
        for index, word in enumerate(stream):
            if word is not None:
                where.setdefault(word, []).append(index)
        return cls(tuple(stream), where)

    def __bool__(self) -> bool:
        return bool(self.where)

    def has(self, line_words: Sequence[str]) -> bool:
        if not line_words:
            return False
        # Anchor on the line's rarest word: quoted notices repeat "ticket" on every line.
        offset = min(range(len(line_words)), key=lambda i: len(self.where.get(line_words[i], ())))
        wanted, size = tuple(line_words), len(line_words)
        return any(self.stream[at - offset:at - offset + size] == wanted
                   for at in self.where.get(line_words[offset], ()) if at >= offset)


def mail_text(raw: bytes) -> str:
    """The readable text of a mail we built (plain part, else its HTML as text)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    part = message.get_body(("plain", "html"))
    if part is None:
        return ""
    content = str(part.get_content())
    return html_to_text(content) if part.get_content_type() == "text/html" else content


def remove_known(body: str, known: Known) -> str:
    """`body` without the lines that repeat text we sent (and what introduces them)."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    gone = [False] * len(lines)
    index = 0
    while index < len(lines):
        end = _run_end(lines, index, known)
        if end > index:
            _drop_run(lines, index, end, gone)
            index = end
        else:
            index += 1
    return "\n".join(line for line, drop in zip(lines, gone, strict=True) if not drop)


def _unquoted(line: str) -> tuple[str, bool]:
    mark = _QUOTE_MARK.match(line)
    return (line[mark.end():], True) if mark and mark.end() else (line, False)


def _run_end(lines: list[str], start: int, known: Known) -> int:
    """The end of the run of known (or empty) lines that starts at `start`; `start` if none."""
    text, _ = _unquoted(lines[start])
    if not known.has(words(text)):
        return start
    end, total, marked = start, 0, False
    while end < len(lines):
        text, quoted = _unquoted(lines[end])
        found = words(text)
        if found and not known.has(found):
            break
        total += len(found)
        marked = marked or (quoted and bool(found))
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1  # trailing blank lines belong to what follows
    return end if (marked or total >= RUN_WORDS) else start


def _drop_run(lines: list[str], start: int, end: int, gone: list[bool]) -> None:
    for index in range(start, end):
        gone[index] = True
    # The attribution or header block above it: a few lines, blank lines between allowed.
    above: list[int] = []
    index = start - 1
    while index >= 0 and len(above) < _ABOVE_LINES and not gone[index]:
        line = lines[index].strip()
        if line:
            if not (_is_intro(line) or _SEPARATOR.match(line) or not words(_unquoted(line)[0])):
                break
            above.append(index)
        index -= 1
    # One "Word: text" line alone is the writer's ("Note: he comes Monday"); a block is Outlook's.
    if len(above) == 1 and not lines[above[0]].rstrip().endswith(":") and _HEADER_LINE.match(lines[above[0]]):
        return
    for index in above:
        gone[index] = True


def _is_intro(line: str) -> bool:
    return line.endswith(":") or bool(_HEADER_LINE.match(line))


def own_reply(plain: str | None, html: str | None, known: Known, sender_name: str = "") -> Reply:
    """The writer's own text of a reply and its signature: known text removed, then what quoting
    and signing is left (`gateway.mail.quotes`)."""
    body = plain if plain and plain.strip() else (html_to_text(html) if html else "")
    return split_reply(remove_known(body, known) if known else body, sender_name)


def new_words(plain: str | None, html: str | None, known: Known, sender_name: str = "") -> str:
    return own_reply(plain, html, known, sender_name).text


def sign_off(signature: str) -> str:
    """What the writer typed to close their mail ("Vänliga hälsningar\nEva"): the signature above
    the "-- " line, below which their mail client adds its block of titles and phone numbers."""
    lines = signature.split("\n")
    # HTML turned into text loses the delimiter's trailing space.
    cut = next((i for i, line in enumerate(lines) if line.strip() == "--"), len(lines))
    return "\n".join(lines[:cut]).strip()


def internal_words(notes: Iterable[str], text: str) -> str | None:
    """A line of one of the internal `notes` that `text` repeats, or None."""
    stream = f" {' '.join(words(text))} "
    for note in notes:
        for line in note.split("\n"):
            found = words(line)
            if len(found) >= NOTE_WORDS and f" {' '.join(found)} " in stream:
                return line.strip()
    return None
