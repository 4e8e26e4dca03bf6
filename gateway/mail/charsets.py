"""Bytes to text for mail: the one charset alias table, and detection for what is unlabelled.

Headers and bodies both come through here, so a charset name that senders misspell or that
Python knows under another name is handled the same wherever it appears. Text is decoded
strictly with the declared charset first; when that fails (or nothing was declared) the bytes
are detected with charset-normalizer; the last resort maps every byte, so nothing raises and
no text is cut short or shown as escape sequences.
"""

from __future__ import annotations

import codecs
import logging
import unicodedata

from gateway.mail import cp50220

log = logging.getLogger("gateway.charsets")
cp50220.register()

# Names senders write -> the codec that decodes what they actually send. Supersets win:
# a mail labelled GB2312 or Shift_JIS routinely carries characters only the superset has.
ALIASES: dict[str, str] = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "euc-cn": "gb18030", "cp936": "gb18030",
    # Japanese Windows mail labelled ISO-2022-JP carries cp932's extra characters (gateway.mail.cp50220).
    "iso-2022-jp": "cp50220", "csiso2022jp": "cp50220", "iso-2022-jp-ms": "cp50220", "iso2022_jp": "cp50220",
    "cp50221": "cp50220", "cp50222": "cp50220",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932", "ms_kanji": "cp932",
    "windows-31j": "cp932", "csshiftjis": "cp932",
    "euc-kr": "cp949", "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "ksc5601": "cp949",
    "iso-ir-149": "cp949", "x-windows-949": "cp949",
    "big5": "big5hkscs", "x-x-big5": "big5hkscs",
    "utf8": "utf-8", "utf-8-sig": "utf-8-sig", "x-unknown": "utf-8", "unknown-8bit": "utf-8",
    "unicode-1-1-utf-7": "utf-7", "x-utf-7": "utf-7",
    # ASCII and Latin-1 labels are read as Windows-1252 (as browsers do): the bytes 0x80-0x9F
    # are curly quotes and euro signs in real mail, never C1 control characters.
    "us-ascii": "cp1252", "ascii": "cp1252", "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "iso_8859-1": "cp1252", "iso8859-1": "cp1252", "l1": "cp1252", "ansi_x3.4-1968": "cp1252",
    "iso-8859-8-i": "iso-8859-8", "iso-8859-6-i": "iso-8859-6", "windows-874": "cp874", "tis-620": "cp874",
    "x-mac-roman": "mac_roman", "macintosh": "mac_roman", "x-mac-cyrillic": "mac_cyrillic",
    "iso-8859-11": "cp874", "koi8-u": "koi8_u", "cp-850": "cp850", "ibm850": "cp850", "ibm852": "cp852",
}
# When several detected encodings fit equally well, the more common one in mail wins.
_PREFERRED = ("utf_8", "cp1252", "cp1250", "cp1251", "koi8_r", "iso8859_15", "cp1257", "cp1253",
              "cp1254", "gb18030", "big5", "cp932", "euc_jp", "iso2022_jp", "cp949", "iso8859_2")
_DETECT_MAX_BYTES = 64_000
_SEVEN_BIT = {"cp50220", "iso2022_jp", "iso2022_jp_1", "iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_3", "iso2022_jp_ext",
              "iso2022_kr", "utf-7", "hz"}


def codec(charset: str | None) -> str | None:
    """The Python codec for a declared charset name, or None when it names nothing we know."""
    if not charset:
        return None
    name = charset.strip().strip("\"'").lower()
    name = ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode(data: bytes, declared: str | None = None, *, hint: str | None = None) -> str:
    """Text from `data`: the declared charset if it fits, else detection, else every byte mapped.

    `hint` is another charset the same message uses (a body's for its headers); it is tried
    after the declared one and before detection, which is unreliable on a few bytes.
    """
    name = codec(declared)
    if data.isascii():
        # ISO-2022-JP and UTF-7 are 7-bit: ASCII bytes are not yet ASCII text.
        if name in _SEVEN_BIT:
            return data.decode(name, "replace")
        return data.decode("ascii")
    # UTF-8 that validates is UTF-8 whatever the label says: other charsets seldom produce
    # valid multi-byte sequences, and a Latin-1 label on UTF-8 mail is a common mistake.
    if name and name.startswith(("utf-16", "utf-32")) and _fits(data, name):
        return data.decode(name)  # wide encodings' NUL bytes are valid UTF-8 too
    if name != "utf-7" and _fits(data, "utf-8"):
        return data.decode("utf-8")
    if name and _fits(data, name):
        return data.decode(name)
    hinted = codec(hint)
    if hinted and _fits(data, hinted):
        return _hinted(data, hinted)
    detected = detect(data)
    if detected:
        return data.decode(detected, "replace")
    return data.decode("cp1252", "replace") if _fits(data, "cp1252") else data.decode("latin-1")


def _hinted(data: bytes, hint: str) -> str:
    return data.decode(reading(data, hint), "replace")


def reading(data: bytes, charset: str) -> str:
    """The charset to read `data` in: `charset` (which it fits), unless that reads as symbols
    where detection's reading has fewer.

    A single-byte label (Latin-1, the most common) fits any bytes: GB2312 headers of a mail whose
    text part says ISO-8859-1 decode to "×ª·¢£º". Names and subjects are made of letters, so a
    quarter or more symbols among the non-ASCII characters reads as garbage, in Latin, Greek,
    Cyrillic and CJK text alike."""
    wide, symbols = _symbols(data.decode(charset))
    if symbols < 3 or symbols < wide / 4:
        return charset
    detected = detect(data)
    if detected is None or codec(detected) == codec(charset):
        return charset
    other_wide, other_symbols = _symbols(data.decode(detected, "replace"))
    return detected if other_symbols / max(other_wide, 1) < symbols / wide else charset


def _symbols(text: str) -> tuple[int, int]:
    """(non-ASCII characters, those of them that are neither letters nor marks)."""
    wide = [ch for ch in text if ord(ch) > 127]
    return len(wide), sum(1 for ch in wide if unicodedata.category(ch)[0] not in "LM")


def _fits(data: bytes, name: str) -> bool:
    try:
        data.decode(name)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def detect(data: bytes) -> str | None:
    """The encoding charset-normalizer finds most plausible, ties broken towards common ones."""
    from charset_normalizer import from_bytes  # loaded on first use: start-up time matters

    try:
        matches = list(from_bytes(data[:_DETECT_MAX_BYTES]))
    except Exception:  # the detector must never take a message down with it
        log.info("charset detection failed", exc_info=True)
        return None
    if not matches:
        return None
    least = min(m.chaos for m in matches)
    best = [m for m in matches if m.chaos <= least + 0.01]
    top = max(m.coherence for m in best)
    best = [m for m in best if m.coherence >= top - 0.05]
    best.sort(key=lambda m: _PREFERRED.index(m.encoding) if m.encoding in _PREFERRED else len(_PREFERRED))
    return str(best[0].encoding)
