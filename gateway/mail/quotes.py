"""The customer's own words: the new text of a reply, and its signature, beside the full body.

The new text is everything the sender wrote that is not quoted, in order: a top-posted answer
above the quote, a bottom-posted one below it, inline answers between quoted blocks. Quoted is
a `>` line, an attribution ("On … wrote:", see `gateway.mail.attribution`) with the quote it
introduces, an indented block after an attribution (mutt and s-nail indent with a tab), and
everything after an Outlook header block, an "Original Message" rule or an attribution that
is followed by unmarked text: clients that do not mark the quote put nothing of the sender's
below it. The signature (`gateway.mail.signature`) is then taken off the end.

`new_text` is a pure function of the body, so known-source removal (text Postdesk itself
sent) can run before or after it. Every pattern sees a line, or a few joined lines, of
bounded length, and each line is looked at a bounded number of times: bodies come from
strangers and some are megabytes of `>`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from gateway.mail.attribution import MAX_LINES, attribution_length, header_block_length, is_forward, is_original_message
from gateway.mail.htmlquotes import without_quote_containers
from gateway.mail.htmltext import html_to_text
from gateway.mail.signature import is_mobile_footer, signature_start

_NEWLINE = re.compile(r"\r\n?")
_SEPARATOR = re.compile(r"(?:[-_=*~—–]\s*){3,}")
# A quote line that an editor hard-wrapped lost its `>` on the continuation.
_WRAPPED_AFTER = 60


class Reply(NamedTuple):
    text: str  # the new text
    signature: str


def new_text(plain: str | None, html: str | None, sender_name: str = "") -> str:
    """New text of a reply from its parts: the plain part when it says anything, else HTML."""
    return reply_of(plain, html, sender_name).text


def reply_of(plain: str | None, html: str | None, sender_name: str = "") -> Reply:
    if plain and plain.strip():
        return split_reply(plain, sender_name)
    if html:
        return split_reply(html_to_text(without_quote_containers(html)), sender_name)
    return Reply("", "")


def new_text_from_html(html: str) -> str:
    """HTML body -> new text: quote containers removed, converted to text, then `visible_text`."""
    return visible_text(html_to_text(without_quote_containers(html)))


def visible_text(body: str, sender_name: str = "") -> str:
    """Plain-text body -> the new text of the reply, without quoted history and signature."""
    return split_reply(body, sender_name).text


def split_reply(body: str, sender_name: str = "") -> Reply:
    # Trailing blanks go, except the one in the "-- " delimiter, which ends the new text.
    lines = _rejoin_split_addresses([line if line == "-- " else line.rstrip()
                                     for line in _NEWLINE.sub("\n", body).split("\n")])
    end = _history_start(lines)
    kept = _unquoted(lines, end)
    delimiter = next((i for i, line in enumerate(kept) if line == "-- "), len(kept))
    start = signature_start(kept, delimiter, sender_name)
    return Reply("\n".join(kept[:start]).strip(), "\n".join(kept[start:]).strip("\n"))


def _rejoin_split_addresses(lines: list[str]) -> list[str]:
    """Gmail wraps "… skrev Anna <anna@x.se\n>:"; the ">:" is the attribution's end, not a quote."""
    out: list[str] = []
    for line in lines:
        if line.strip() == ">:" and out and "<" in out[-1] and not _is_quoted(out[-1]):
            out[-1] += ">:"
        else:
            out.append(line)
    return out


def _is_blank(line: str) -> bool:
    return not line.strip()


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _next_content(lines: list[str], index: int) -> int:
    while index < len(lines) and _is_blank(lines[index]):
        index += 1
    return index


def _history_start(lines: list[str]) -> int:
    """Index where unmarked history begins (Outlook block, rule, bare attribution), or len(lines)."""
    index = -1
    while index + 1 < len(lines):
        index += 1
        line = lines[index]
        if _is_blank(line) or _is_quoted(line):
            continue
        if is_original_message(line):
            return _back_over_separators(lines, index)
        block = header_block_length(lines, index)
        if block and _forwarded(lines, index):
            index += block - 1  # a forwarded message is what the customer chose to send us
            continue
        if block:
            return _back_over_separators(lines, index)
        if is_mobile_footer(line.strip()):
            # The phone's footer ends what the sender typed; below it is the quoted original.
            return index + 1
        length = attribution_length(lines, index, strict=True)
        if length:
            following = _next_content(lines, index + length)
            if following < len(lines) and not _is_quoted(lines[following]) and not _indented(lines[following]):
                return _back_over_separators(lines, index)
    return len(lines)


def _forwarded(lines: list[str], index: int) -> bool:
    before = index - 1
    while before >= 0 and _is_blank(lines[before]):
        before -= 1
    return before >= 0 and is_forward(lines[before])


def _back_over_separators(lines: list[str], index: int) -> int:
    """Include the "_____" or "-----" rule and blank lines that Outlook puts above its block."""
    while index > 0 and (_is_blank(lines[index - 1]) or _is_separator(lines[index - 1])):
        index -= 1
    return index


def _is_separator(line: str) -> bool:
    return len(line) <= 200 and bool(_SEPARATOR.fullmatch(line.strip()))


def _indented(line: str) -> bool:
    return line.startswith(("\t", "    ")) and bool(line.strip())


def _unquoted(lines: list[str], end: int) -> list[str]:
    """The lines of `lines[:end]` that are not quoted, a blank line where a quote stood."""
    quoted = _quoted_marks(lines, end)
    kept: list[str] = []
    for index in range(end):
        if quoted[index]:
            if kept and kept[-1] != "":
                kept.append("")
            continue
        if lines[index] == "" and kept and kept[-1] == "" and index and quoted[index - 1]:
            continue
        kept.append(lines[index])
    while kept and kept[-1] == "":
        kept.pop()
    return kept


def _quoted_marks(lines: list[str], end: int) -> list[bool]:
    quoted = [False] * end
    index = 0
    while index < end:
        line = lines[index]
        if _is_quoted(line):
            quoted[index] = True
            _mark_attribution_before(lines, quoted, index)
        elif index and quoted[index - 1] and index + 1 < end and _is_quoted(lines[index + 1]) \
                and _wrapped_quote(lines[index - 1], line):
            quoted[index] = True
        else:
            length = attribution_length(lines, index, strict=False)
            following = _next_content(lines, index + length) if length else index
            if length and (following >= end or _indented(lines[following])):
                # An attribution with nothing after it, or with an indented quote (mutt, s-nail).
                for marked in range(index, following):
                    quoted[marked] = True
                index = following
                while index < end and (_indented(lines[index]) or _is_blank(lines[index])):
                    quoted[index] = True
                    index += 1
                continue
        index += 1
    return quoted


def _mark_attribution_before(lines: list[str], quoted: list[bool], quote: int) -> None:
    """Mark the attribution that introduces the quote starting at `quote` (blank lines between)."""
    if quote and quoted[quote - 1]:
        return
    last = quote - 1
    while last >= 0 and _is_blank(lines[last]):
        last -= 1
    # Longest first: "On …, Chris Wanstrath\n<n@github.com> wrote:" also passes on its last line.
    for size in range(MAX_LINES, 0, -1):
        start = last - size + 1
        if start >= 0 and not quoted[start] and attribution_length(lines, start, strict=False) == size:
            for index in range(start, last + 1):
                quoted[index] = True
            return


def _wrapped_quote(previous: str, line: str) -> bool:
    """`line` continues the quoted `previous` line that an editor wrapped, losing the `>`.

    Only between two quoted lines, after a long one that does not ask or introduce anything,
    and starting in lower case: an inline answer follows a question.
    """
    stripped = line.strip()
    return (len(previous) >= _WRAPPED_AFTER and not previous.rstrip().endswith(("?", ":"))
            and bool(stripped) and stripped[0].islower() and not is_mobile_footer(stripped))
