"""Content-Transfer-Encodings, decoded leniently: what senders really write still yields bytes.

Base64 with bad padding, line noise or a missing tail; quoted-printable with soft breaks in
either line-ending style; x-uuencode with or without its `begin` line. Each decoder returns
the bytes it could recover and never raises.
"""

from __future__ import annotations

import binascii
import quopri
import re

_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
_UU_BEGIN = re.compile(rb"^begin(?:-base64)?\s+[0-7]{3,4}\s+(.*?)\s*$", re.MULTILINE)
_UU_LINE = re.compile(rb"^[\x20-\x60]+$")


def base64_bytes(data: bytes) -> bytes:
    """Decode base64, ignoring anything outside the alphabet and repairing the padding."""
    head, _, _ = data.partition(b"=")
    # Text after the padding is a second, wrongly concatenated stream or junk: the padding
    # ends the data.
    clean = _NOT_BASE64.sub(b"", head)
    if len(clean) % 4 == 1:
        clean = clean[:-1]  # a lone trailing sextet carries no whole byte
    clean += b"=" * (-len(clean) % 4)
    try:
        return binascii.a2b_base64(clean)
    except binascii.Error:
        return b""


def quoted_printable_bytes(data: bytes) -> bytes:
    return quopri.decodestring(data)


def uu_filename(data: bytes) -> str | None:
    match = _UU_BEGIN.search(data[:4096])
    return match.group(1).decode("utf-8", "replace") if match else None


def uu_bytes(data: bytes) -> bytes:
    """Decode uuencoded data, with or without the `begin mode name` and `end` lines."""
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    begin = next((i for i, line in enumerate(lines[:50]) if _UU_BEGIN.match(line)), -1)
    out = bytearray()
    for line in lines[begin + 1:]:
        stripped = line.rstrip(b"\r")
        if stripped in (b"end", b"`") or not stripped:
            if stripped == b"end":
                break
            continue
        if not _UU_LINE.match(stripped):
            continue
        try:
            out += binascii.a2b_uu(stripped)
        except binascii.Error:
            # Some encoders drop trailing spaces; the declared length says how many bytes follow.
            length = (stripped[0] - 32) & 63
            try:
                out += binascii.a2b_uu(stripped + b" " * (61 - len(stripped)))[:length]
            except binascii.Error:
                continue
    return bytes(out)


def decode_transfer(data: bytes, encoding: str) -> bytes:
    """Payload bytes for one Content-Transfer-Encoding; unknown encodings are taken as is."""
    name = encoding.strip().lower()
    if name == "base64":
        return base64_bytes(data)
    if name in ("quoted-printable", "quoted_printable"):
        return quoted_printable_bytes(data)
    if name in ("x-uuencode", "uuencode", "x-uue", "uue"):
        return uu_bytes(data)
    return data
