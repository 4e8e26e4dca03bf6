"""The customer's own words: the new text of a reply, without quoted history or signature.

Owns what mail clients do to mark earlier messages — `>` quoting, attribution lines ("On …
wrote:", "Den … skrev:", "La … a scris:", "Am … schrieb …:", "Le … a écrit :"), Outlook
header blocks in English, Swedish, Romanian, German and French, HTML quote containers — and
how senders sign off ("-- ", mobile footers, mailing-list footers).

Only history that *ends* the message is removed. Quoted blocks with new text after them stay,
so that answers written inline keep the questions they answer. Every pattern is compiled
once, has no nested quantifiers and only ever sees a line (or a few joined lines) of bounded
length, because bodies come from strangers and some are megabytes of `>`.
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser

from gateway.mail.htmltext import html_to_text

_NEWLINE = re.compile(r"\r\n?")

# Attribution lines. The verb either closes the line ("On Tue, … John <j@x.com> wrote:",
# "La 3 mar. 2026, la 10:12, Ion <ion@x.ro> a scris:") or comes before the author
# ("Den 2026-03-03 kl. 10:12 skrev Anna <a@b.se>:", "Am 03.03.2026 um 10:12 schrieb Hans:").
_VERBS = r"(?:wrote|writes|skrev|a scris|schrieb|a écrit|escribió|ha scritto|schreef)"
_VERB_LAST = re.compile(rf"\b{_VERBS}\s*:$", re.IGNORECASE)
_VERB_INSIDE = re.compile(rf"\s{_VERBS}\s", re.IGNORECASE)
# A wrapped attribution must start like one, or any paragraph ending in one would match.
_LEAD = re.compile(r"(?:On|Den|Am|La|Le|El|Il|Op)\b|\d")
# A date, a time or an address: what tells "On 3 Mar 2026, at 10:12, John wrote:" from a
# sentence that happens to end in "wrote:".
_EVIDENCE = re.compile(r"@|\d{1,2}[:.]\d{2}|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
_ATTRIBUTION_MAX_CHARS = 500
_ATTRIBUTION_MAX_LINES = 3

# Outlook header blocks: a From line followed by a Sent/Date line and a To or Subject line.
_FROM = re.compile(r"\s*\*{0,2}(?:From|Från|De la|Von|De)\s*:", re.IGNORECASE)
_SENT = re.compile(
    r"(?:^|[\s*])(?:Sent|Date|Skickat|Datum|Trimis|Data|Gesendet|Envoyé)\s*:", re.IGNORECASE
)
_TO_OR_SUBJECT = re.compile(
    r"(?:^|[\s*])(?:To|Till|Către|Catre|An|À|Subject|Ämne|Subiect|Betreff|Objet)\s*:",
    re.IGNORECASE,
)
_HEADER_WINDOW = 8
_HEADER_MAX_CHARS = 2000
_ORIGINAL_MESSAGE = re.compile(
    r"-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Ursprungligt meddelande"
    r"|Originalmeddelande|Mesaj original|Message d'origine|Mensaje original)\s*-{2,}",
    re.IGNORECASE,
)
# A forwarded message is something the customer chose to send us, not history to hide.
_FORWARD = re.compile(
    r"-{2,}\s*(?:Forwarded message|Vidarebefordrat meddelande|Mesaj redirecționat"
    r"|Weitergeleitete Nachricht|Message transféré)\s*-{2,}|Begin forwarded message:",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(r"(?:[-_=*~—–]\s*){3,}")
_UNDERSCORES = re.compile(r"_{4,}")

# Footers that phones and mail apps add by themselves, in the languages we serve.
_WORD = r"[\w.()\-]+"
_APP = r"(?:Mail|Outlook|Yahoo|Samsung|Gmail|Proton\w*|BlueMail|AOL|Huawei|Xiaomi|iPhone|iPad)"
_MOBILE = re.compile(
    rf"""(?:
        Sent\ from\ (?:my\ {_WORD}|{_APP})(?:\ {_WORD}){{0,3}}
      | Skickat\ från\ (?:min\ )?{_WORD}(?:\ {_WORD}){{0,3}}
      | Trimis\ de\ pe\ {_WORD}(?:\ {_WORD}){{0,3}}
      | Von\ meinem\ {_WORD}(?:\ {_WORD}){{0,2}}\ gesendet
      | Gesendet\ von\ (?:meinem\ )?{_WORD}(?:\ {_WORD}){{0,2}}
      | Envoyé\ de\ mon\ {_WORD}(?:\ {_WORD}){{0,2}}
      | (?:Get|Hämta|Obțineți)\ Outlook\ (?:for|för|pentru)\ (?:iOS|Android)
      | Outlook\ für\ (?:iOS|Android)\ beziehen
    )\.?(?:\s*<[^<>\s]{{1,200}}>|\s*\([^()\s]{{1,200}}\))?""",
    re.IGNORECASE | re.VERBOSE,
)
_MOBILE_MAX_CHARS = 120
_SIGNATURE_MAX_LINES = 12
_SIGNATURE_SCAN_LINES = 40


def new_text(plain: str | None, html: str | None) -> str:
    """New text of a reply from its parts: the plain part when it says anything, else HTML."""
    if plain and plain.strip():
        return visible_text(plain)
    return new_text_from_html(html) if html else ""


def visible_text(body: str) -> str:
    """Plain-text body -> the new text of the reply, stripped of trailing history and signature."""
    raw = _NEWLINE.sub("\n", body).split("\n")
    lines = [line.rstrip() for line in raw]
    end = min(_history_start(lines), _signature_start(raw))
    end = _trim_tail(lines, end)
    return "\n".join(lines[:end]).strip()


def _is_blank(line: str) -> bool:
    return not line.strip()


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _is_attribution(text: str, strict: bool) -> bool:
    """Does `text` read as "… wrote:"? Strict means: even without a quote after it."""
    if len(text) > _ATTRIBUTION_MAX_CHARS or not text.endswith(":"):
        return False
    verb_last = _VERB_LAST.search(text)
    # The verb needs someone before it: a bare "wrote:" is the tail of a wrapped line.
    verb_last_ok = verb_last is not None and verb_last.start() >= 2
    verb_inside = _VERB_INSIDE.search(text) is not None
    if strict:
        # Without a quote to vouch for it, it must also open like one or name an address:
        # "Yesterday at 10:12 the server wrote:" introduces the customer's own paste.
        opens_like_one = _LEAD.match(text) is not None or "@" in text
        dated = _EVIDENCE.search(text) is not None
        return (verb_last_ok or verb_inside) and opens_like_one and dated
    # "Den 3 mars 2026 skrev Anna <a@b.se>:" has its verb inside; a sentence like "I wrote
    # this to you:" does too, so that shape needs to open like an attribution.
    return verb_last_ok or (verb_inside and _LEAD.match(text) is not None)


def _attribution_length(lines: list[str], start: int, strict: bool) -> int:
    """How many lines from `start` form an attribution (it may wrap), 0 if none."""
    parts: list[str] = []
    for line in lines[start : start + _ATTRIBUTION_MAX_LINES]:
        if _is_blank(line) or _is_quoted(line) or len(line) > _ATTRIBUTION_MAX_CHARS:
            return 0
        parts.append(line.strip())
        if len(parts) > 1 and not _LEAD.match(parts[0]):
            return 0
        if _is_attribution(" ".join(parts), strict):
            return len(parts)
    return 0


def _next_content(lines: list[str], index: int) -> int:
    while index < len(lines) and _is_blank(lines[index]):
        index += 1
    return index


def _is_header_block(lines: list[str], index: int) -> bool:
    """An Outlook-style "From: / Sent: / To: / Subject:" block starts at `index`."""
    if not _FROM.match(lines[index]) or _forwarded(lines, index):
        return False
    window: list[str] = []
    for line in lines[index : index + _HEADER_WINDOW]:
        if _is_blank(line) or _is_quoted(line):
            break
        window.append(line)
    text = " ".join(window)
    if len(text) > _HEADER_MAX_CHARS:
        return False
    return bool(_SENT.search(text)) and bool(_TO_OR_SUBJECT.search(text))


def _forwarded(lines: list[str], index: int) -> bool:
    before = index - 1
    while before >= 0 and _is_blank(lines[before]):
        before -= 1
    return before >= 0 and bool(_FORWARD.search(lines[before][:200]))


def _history_start(lines: list[str]) -> int:
    """Index where unquoted history begins (Outlook block, bare attribution), or len(lines)."""
    for index, line in enumerate(lines):
        if _is_blank(line) or _is_quoted(line):
            continue
        if _ORIGINAL_MESSAGE.fullmatch(line.strip()[:200]) or _is_header_block(lines, index):
            return _back_over_separators(lines, index)
        length = _attribution_length(lines, index, strict=True)
        # An attribution followed by a `>` quote is the quote's header and stays with it;
        # one followed by plain text (Gmail's "Inbox" style) starts unquoted history.
        if length:
            following = _next_content(lines, index + length)
            if following < len(lines) and not _is_quoted(lines[following]):
                return index
    return len(lines)


def _back_over_separators(lines: list[str], index: int) -> int:
    """Include the "_____" or "-----" rule and blank lines that Outlook puts above its block."""
    while index > 0 and (_is_blank(lines[index - 1]) or _is_separator(lines[index - 1])):
        index -= 1
    return index


def _is_separator(line: str) -> bool:
    return len(line) <= 200 and bool(_SEPARATOR.fullmatch(line.strip()))


def _signature_start(raw: list[str]) -> int:
    """The standard "-- " delimiter (with its space) ends the new text wherever it is."""
    for index, line in enumerate(raw):
        if line == "-- ":
            return index
    return len(raw)


def _trim_tail(lines: list[str], end: int) -> int:
    """Peel blank lines, quotes, attributions and signatures off the end until none is left."""
    after_quote = False
    while end > 0:
        last = lines[end - 1]
        if _is_blank(last):
            end -= 1
            continue
        if _is_quoted(last):
            end -= 1
            after_quote = True
            continue
        start = _trailing_attribution(lines, end, strict=not after_quote)
        if start is None:
            start = _trailing_signature(lines, end)
        if start is None:
            return end
        end, after_quote = start, False
    return end


def _trailing_attribution(lines: list[str], end: int, strict: bool) -> int | None:
    # Longest first: the last line of "On …, Chris Wanstrath\n<n@github.com> wrote:" would
    # pass on its own and leave the first line behind.
    for size in range(_ATTRIBUTION_MAX_LINES, 0, -1):
        start = end - size
        if start < 0 or any(_is_blank(line) or _is_quoted(line) for line in lines[start:end]):
            continue
        if _attribution_length(lines, start, strict) == size:
            return start
    return None


def _trailing_signature(lines: list[str], end: int) -> int | None:
    """Start of a signature that ends the text at `end`, or None."""
    last = lines[end - 1].strip()
    if _is_separator(last):
        return end - 1
    if len(last) <= _MOBILE_MAX_CHARS and _MOBILE.fullmatch(last):
        return end - 1
    if _is_dash_name(last) and (end == 1 or _is_blank(lines[end - 2])):
        return end - 1
    return _delimited_signature(lines, end)


def _is_dash_name(line: str) -> bool:
    """A sign-off like "-Abhishek Kona" or "– Anna Svensson", not a list item like "- fix it"."""
    if len(line) > 40 or line[:1] not in "-–—" or line[1:2] in "-–—":
        return False
    words = line[1:].split()
    return 0 < len(words) <= 4 and all(word[0].isupper() for word in words)


def _delimited_signature(lines: list[str], end: int) -> int | None:
    """A "--" (space lost) or "_____" line with at most a few short lines of signature below."""
    content = 0
    for index in range(end - 1, max(end - _SIGNATURE_SCAN_LINES, 0) - 1, -1):
        line = lines[index].strip()
        if line == "--" or _UNDERSCORES.fullmatch(line):
            return index
        if _is_quoted(line):
            return None
        if line:
            content += 1
            if content > _SIGNATURE_MAX_LINES:
                return None
    return None


# HTML ------------------------------------------------------------------

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}
# Containers whose start means "everything from here on is the earlier message".
_CUT_IDS = {"divrplyfwdmsg", "mail-editor-reference-message-container", "olk_src_body_section"}
_OUTLOOK_RULES = ("border-top:solid#e1e1e1", "border-top:solid#b5c4df")
# Containers that are quoted history or a signature, removed with what they hold.
_SKIP_CLASSES = {"gmail_quote", "moz-cite-prefix", "yahoo_quoted", "gmail_signature",
                 "moz-signature"}
_SKIP_IDS = {"signature"}
# Substrings without which none of the containers above can be present.
_MARKERS = ("border-top", "cite", "signature", *_CUT_IDS, *_SKIP_CLASSES)


def new_text_from_html(html: str) -> str:
    """HTML body -> new text: quote containers removed, converted to text, then `visible_text`."""
    return visible_text(html_to_text(_without_quote_containers(html)))


def _without_quote_containers(html: str) -> str:
    lowered = html.lower()
    # Most bodies carry none of the markers; parsing them twice would only cost time.
    if not any(marker in lowered for marker in _MARKERS):
        return html
    pruner = _QuotePruner()
    pruner.feed(html)
    pruner.close()
    return pruner.result()


def _container(tag: str, attrs: list[tuple[str, str | None]]) -> str | None:
    """Whether a start tag opens a "cut" or a "skip" container (see above), or neither."""
    values = {name.lower(): (value or "") for name, value in attrs}
    element_id = values.get("id", "").strip().lower()
    style = "".join(values.get("style", "").split()).lower()
    if element_id in _CUT_IDS or (tag == "div" and any(r in style for r in _OUTLOOK_RULES)):
        return "cut"
    classes = set(values.get("class", "").lower().split())
    if classes & _SKIP_CLASSES or element_id in _SKIP_IDS:
        return "skip"
    if tag == "blockquote" and values.get("type", "").strip().lower() == "cite":
        return "skip"
    return None


class _QuotePruner(HTMLParser):
    """Re-emits HTML without quote containers, stopping at the first "cut" container.

    A skipped subtree ends at the end tag that balances its start tag of the same name;
    counting only that name keeps unclosed <p> and <li> inside it from confusing the count.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._out: list[str] = []
        self._skip_tag: str | None = None
        self._skip_depth = 0
        self._done = False

    def result(self) -> str:
        return "".join(self._out)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._done:
            return
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth += 1
            return
        kind = _container(tag, attrs)
        if kind == "cut":
            self._cut()
        elif kind == "skip" and tag not in _VOID:
            self._skip_tag, self._skip_depth = tag, 1
        elif kind is None:
            self._out.append(self.get_starttag_text() or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._done or self._skip_tag is not None:
            return
        kind = _container(tag, attrs)
        if kind == "cut":
            self._cut()
        elif kind is None:
            self._out.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        if self._done:
            return
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth -= 1
                if self._skip_depth == 0:
                    self._skip_tag = None
            return
        self._out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if not self._done and self._skip_tag is None:
            self._out.append(escape(data, quote=False))

    def _cut(self) -> None:
        # Outlook draws a rule just above its header block; it belongs to the history.
        while self._out and (not self._out[-1].strip() or self._out[-1][:3].lower() == "<hr"):
            self._out.pop()
        self._done = True
