"""Header blocks as real software writes them: repaired before parsing, decoded after.

`repair` fixes the header block of a raw message so that the stdlib parser sees every header:
junk lines before the first header are dropped and continuation lines that lost their leading
whitespace are indented again (the parser would otherwise end the header block there and read
the remaining headers as body). `decode_value` turns one header value into text: unfolded,
RFC 2047 encoded-words decoded (also with spaces inside, or split over folded lines), raw
8-bit bytes decoded by `gateway.mail.charsets`. `header_values` and `header_text` read the
decoded values of a header from a parsed message (or one of its parts) without ever raising;
`HeaderIndex` reads all of a message's headers in one pass, for rules that ask for dozens.
"""

from __future__ import annotations

import itertools
import quopri
import re
from email.message import Message

from gateway.mail.charsets import decode
from gateway.mail.transfer import base64_bytes

_FIELD = re.compile(rb"[!-9;-~]{1,76}[ \t]*:")
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+$")
_FOLD = re.compile(r"\r\n|\r|\n")
# An encoded-word; its text may carry spaces (against the RFC, common in practice).
_WORD = re.compile(r"=\?([^?\s]{1,40})\?([qQbB])\?([^?]{0,2000}?)\?=")
_JUNK_MAX_LINES = 5
# A header block longer than this is not one; what follows it is read as it is.
_HEADER_SCAN = 1_000_000


def repair(raw: bytes) -> bytes:
    """The message with a header block the stdlib parser reads whole; the body untouched.

    A line in the header block that is neither a field nor indented is a wrapped header when
    more fields follow it, and the start of a body that lost its blank line when none do.
    """
    lines, start, end = _header_lines(raw)
    fields = [i for i in range(start, end) if _is_field(lines[i], i == start)]
    last_field = fields[-1] if fields else start - 1
    out: list[bytes] = []
    for index in range(start, end):
        line = lines[index]
        if line[:1] in (b" ", b"\t") or _is_field(line, index == start) or not out:
            out.append(line)
        elif index < last_field:
            out.append(b" " + line)  # wrapped by software that forgot the indentation
        else:
            break  # the body begins here, without its blank line
    else:
        index = end
    if start == 0 and index == end:
        return raw
    consumed = sum(len(line) for line in lines[:index])
    newline = b"\r\n" if b"\r\n" in raw[:4096] else b"\n"
    separator = b"" if index == end else newline
    return b"".join(out) + separator + raw[consumed:]


def _header_lines(raw: bytes) -> tuple[list[bytes], int, int]:
    """The lines of the first megabyte up to the header block's end; where the block starts and ends.

    Lines are split only as far as the first blank line after the block's start: the body,
    however long, is never split (the lines after `end` were never looked at).
    """
    found = _LINE.finditer(raw, 0, _HEADER_SCAN)
    lines = [match.group(0) for match in itertools.islice(found, _JUNK_MAX_LINES + 1)]
    start = _first_header(lines)
    end = next((i for i in range(start, len(lines)) if not lines[i].strip(b"\r\n")), None)
    if end is not None:
        return lines, start, end
    for match in found:
        lines.append(match.group(0))
        if not lines[-1].strip(b"\r\n"):
            return lines, start, len(lines) - 1
    return lines, start, len(lines)


def _is_field(line: bytes, first: bool) -> bool:
    return bool(_FIELD.match(line)) or (first and line.startswith(b"From "))


def _first_header(lines: list[bytes]) -> int:
    """Skip a few lines of junk (blank lines, stray text) before the first real header."""
    for index, line in enumerate(lines[: _JUNK_MAX_LINES + 1]):
        if _FIELD.match(line) or line.startswith(b"From "):
            return index
    return 0


def decode_value(value: str, *, hint: str | None = None) -> str:
    """One header value as text; never raises. `hint`: a charset the message uses elsewhere."""
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        # compat32 keeps undecodable header bytes as surrogate escapes: detect their charset.
        value = decode(value.encode("utf-8", "surrogateescape"), None, hint=hint)
    value = unfold(value)
    if "=?" not in value:
        return value
    return _decode_words(value)


def header_values(msg: Message, name: str) -> list[str]:
    """All values of a header, unfolded, RFC 2047 decoded where possible; never raises.

    `raw_items` sidesteps the header classes of `policy.default`, which can raise on malformed
    input, and works the same for compat32 messages.
    """
    wanted = name.lower()
    values: list[str] = []
    try:
        items = list(msg.raw_items())
    except Exception:  # A message object built oddly by a caller; treat it as headerless.
        return values
    for key, value in items:
        if str(key).strip().lower() == wanted:
            values.append(decode_value(str(value)).strip())
    return values


def header_text(msg: Message, name: str) -> str:
    """The first value of a header, or "" when absent."""
    values = header_values(msg, name)
    return values[0] if values else ""


class HeaderIndex:
    """A message's headers by lower-cased name, read in one pass; each decoded on first use.

    The same values as `header_values`, as tuples: one index serves every rule of a message.
    """

    def __init__(self, msg: Message) -> None:
        self._raw: dict[str, list[str]] = {}
        self._decoded: dict[str, tuple[str, ...]] = {}
        try:
            items = list(msg.raw_items())
        except Exception:  # A message object built oddly by a caller; treat it as headerless.
            items = []
        for key, value in items:
            self._raw.setdefault(str(key).strip().lower(), []).append(str(value))

    def values(self, name: str) -> tuple[str, ...]:
        """All values of a header, unfolded and decoded, in order."""
        wanted = name.lower()
        found = self._decoded.get(wanted)
        if found is None:
            found = self._decoded[wanted] = tuple(decode_value(v).strip() for v in self._raw.get(wanted, ()))
        return found

    def text(self, name: str) -> str:
        """The first value of a header, or "" when absent."""
        values = self.values(name)
        return values[0] if values else ""

    def names(self) -> frozenset[str]:
        """The lower-cased names of every header present."""
        return frozenset(self._raw)


def unfold(value: str) -> str:
    """RFC 5322 unfolding: a line break followed by whitespace is whitespace."""
    return _FOLD.sub("", value) if "\n" in value or "\r" in value else value


def _decode_words(value: str) -> str:
    """Decode encoded-words leniently: spaces inside, bad base64, split characters."""
    pieces: list[tuple[bytes, str | None]] = []  # charset None: literal text (as UTF-8)
    position = 0
    for match in _WORD.finditer(value):
        between = value[position:match.start()]
        # Whitespace between two encoded-words is not part of the text (RFC 2047 §6.2).
        if between and not (between.isspace() and pieces and pieces[-1][1] is not None):
            pieces.append((between.encode("utf-8", "surrogatepass"), None))
        charset, kind, text = match.groups()
        charset = charset.split("*", 1)[0]  # RFC 2231 language suffix: "utf-8*sv"
        data = text.encode("ascii", "replace")
        if kind in "bB":
            payload = base64_bytes(data)
        else:
            payload = quopri.decodestring(data.replace(b"_", b" ").replace(b" ", b"=20"))
        # A multi-byte character may be split over two encoded-words of one charset.
        if pieces and pieces[-1][1] == charset:
            pieces[-1] = (pieces[-1][0] + payload, charset)
        else:
            pieces.append((payload, charset))
        position = match.end()
    pieces.append((value[position:].encode("utf-8", "surrogatepass"), None))
    return "".join(data.decode("utf-8", "replace") if charset is None else decode(data, charset)
                   for data, charset in pieces)
