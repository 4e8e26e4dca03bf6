"""ISO-2022-JP as Windows writes it (Microsoft's CP50220), a codec Python does not ship.

Outlook and other Windows mailers label their Japanese mail ISO-2022-JP but put in it the
characters of Windows' Shift_JIS (cp932) that JIS X 0208 lacks: circled numbers (①), Roman
numerals, NEC's and IBM's extra kanji. Python's ISO-2022-JP codecs reject those, and the text
would come out with replacement marks. The escape sequences and the two-byte codes are the same
as ISO-2022-JP's, so this codec maps each JIS code to its Shift_JIS bytes (the fixed arithmetic
between the two) and reads the result as cp932. Text that Python's own codec reads strictly is
read by it, so only mail that needs the extensions takes this path; 8-bit bytes under the label
are read as the 8-bit Japanese encoding they fit (see `decode`). Registered under the name
"cp50220" when `gateway.mail.charsets` is imported.
"""

from __future__ import annotations

import codecs

NAME = "cp50220"
_STANDARD = "iso2022_jp_ext"  # JIS X 0212 and half-width katakana, the extensions Python knows
_EIGHT_BIT = ("euc_jp", "cp932")
_ESC = 0x1B
_TWO_BYTE = (b"$B", b"$@")  # JIS X 0208 (1983, 1978)
_ROMAN = (b"(B", b"(J", b"(H")  # ASCII and JIS X 0201 Roman
_KANA = b"(I"  # JIS X 0201 katakana


def _shift_jis(j1: int, j2: int) -> bytes:
    """The Shift_JIS bytes of the JIS X 0208 code (j1, j2)."""
    s1 = ((j1 + 1) >> 1) + (0x70 if j1 < 0x5F else 0xB0)
    s2 = j2 + (0x1F if j1 & 1 else 0x7E)
    if j1 & 1 and s2 >= 0x7F:
        s2 += 1  # Shift_JIS skips 0x7F as a second byte
    return bytes((s1, s2))


def to_cp932(data: bytes) -> bytes:
    """The cp932 bytes of an ISO-2022-JP stream; bytes it cannot place are kept as they are."""
    out = bytearray()
    mode = "roman"
    i, end = 0, len(data)
    while i < end:
        byte = data[i]
        if byte == _ESC:
            seq = data[i + 1:i + 3]
            if seq in _TWO_BYTE or seq in _ROMAN or seq == _KANA:
                mode = "jis" if seq in _TWO_BYTE else "kana" if seq == _KANA else "roman"
                i += 3
                continue
        elif byte == 0x0E:  # shift out: katakana until shift in
            mode, i = "kana", i + 1
            continue
        elif byte == 0x0F:
            mode, i = "roman", i + 1
            continue
        elif mode == "jis" and 0x21 <= byte <= 0x7E and i + 1 < end and 0x21 <= data[i + 1] <= 0x7E:
            out += _shift_jis(byte, data[i + 1])
            i += 2
            continue
        elif mode == "kana" and 0x21 <= byte <= 0x5F:
            out.append(byte + 0x80)
            i += 1
            continue
        out.append(byte)
        i += 1
    return bytes(out)


def decode(data: bytes, errors: str = "strict") -> tuple[str, int]:
    data = bytes(data)
    if not data.isascii():
        # 8-bit bytes under this label are Japanese in one of the 8-bit encodings (UTF-8 is
        # tried before any label). EUC-JP first: Shift_JIS's common lead bytes (0x81-0x9F)
        # are invalid in it, while nearly any EUC-JP text also passes as Shift_JIS. Detection
        # guesses Chinese on a short Japanese subject, so it is not asked.
        for japanese in _EIGHT_BIT:
            try:
                return codecs.decode(data, japanese), len(data)
            except UnicodeDecodeError:
                pass
        return codecs.decode(data, _STANDARD, errors), len(data)
    try:
        return codecs.decode(data, _STANDARD), len(data)
    except UnicodeDecodeError:
        return to_cp932(data).decode("cp932", errors), len(data)


def encode(text: str, errors: str = "strict") -> tuple[bytes, int]:
    return codecs.encode(text, _STANDARD, errors), len(text)


_INFO = codecs.CodecInfo(encode, decode, name=NAME)  # type: ignore[arg-type]


def _search(name: str) -> codecs.CodecInfo | None:
    return _INFO if name.replace("-", "_") == NAME else None


def register() -> None:
    """Make "cp50220" a codec name; harmless when called again."""
    try:
        codecs.lookup(NAME)
    except LookupError:
        codecs.register(_search)
