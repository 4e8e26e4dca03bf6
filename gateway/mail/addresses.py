"""Addresses in headers, and whose mail a message is: a sender, always, when there is one.

Address lists are split on the raw header value and each display name decoded afterwards, so
an encoded name that decodes to "Müller, Bernd" cannot split its own address off. The sender
is the first valid address of the From headers (there may be several, and a list may start
with `<>` or junk), then Sender, Reply-To, Return-Path and the envelope sender, as mature
helpdesks recover it; failing those, the same headers again for an address whose domain has a
single label (`user@intranet`). System senders without a domain (MAILER-DAEMON, postmaster) count as
senders, for bounces. Addresses keep the case they were written in; `key` is what to compare.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses

from gateway.mail.headers import decode_value
from gateway.values import QUOTED_LOCAL

# A domain starts with a letter, a digit or any character from U+00A0 to U+FFFF and goes on
# with those, dots and hyphens. The classes are written as what they leave out: the same
# characters, but compiled in 0.5 ms instead of 5.7 (tests/test_parse_mail.py compares them
# with the classes as stated here over every code point).
DOMAIN_START = r"[^\x00-/:-@\[-`{-\x9f\U00010000-\U0010ffff]"
DOMAIN_REST = r"[^\x00-,/:-@\[-`{-\x9f\U00010000-\U0010ffff]"
_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"]{1,64}@" + DOMAIN_START + "(?:" + DOMAIN_REST + "{0,252})")
# Domainless system senders an MTA writes into its own reports.
_SYSTEM = re.compile(r"(?i)^(?:mailer[-_ ]?daemon|mail[-_ ]daemon|postmaster|mail delivery subsystem|"
                     r"mail delivery system|mail administrator|mdaemon|root|uucp)$")
SENDER_HEADERS = ("From", "Sender", "Reply-To", "Return-Path")
# `<power quadrant system@example.com>`: spaces in an address in angle brackets, unquoted. The
# brackets say where the address is, so the spaces are its local part's, as a quoted local part.
_SPACED_ANGLE = re.compile(r'<([^<>"@,;:\\()\[\]]{1,64})@([^<>\s@,;"]{1,255})>')
# An encoded-word whose encoded text holds a comma or another special, unquoted:
# `=?iso-8859-1?Q?B=FCrling,=20Andreas?= <a@b.c>`. Mailers write it so (RFC 2047 forbids it in a
# phrase), and a list parser would split the name at the comma and lose its first half; quoted,
# the word stays one name, decoded with the rest once the list is split.
_ENCODED_WORD = re.compile(r'(?<!")=\?[^?\s"]{1,75}\?[QqBb]\?[^?\s"]{0,900}\?=')
_SPECIALS = frozenset(',;:<>@()[]\\')
# One address as most mail writes it: `Name <a@b.c>`, `"Name" <a@b.c>` or `a@b.c`, with plain
# characters only. The stdlib's parser reads these the same (tests/test_parse_mail.py compares
# the two), at a tenth of its cost a header; anything else goes to it.
_PLAIN_ADDR = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
# (The unquoted name is a greedy run that cannot hold "<": no backtracking over white space.)
_SIMPLE = re.compile(rf'(?:(?:"(?P<quoted>[^"\\]*)"\s*|(?P<name>[^<>()\[\],;:@"\\]*))<(?P<angle>{_PLAIN_ADDR})>'
                     rf"|(?P<bare>{_PLAIN_ADDR}))")
# What an encoded local part may decode to and still be used: an unquoted local part of one
# mailbox (no second @, no spaces, quotes or brackets that would make it another address).
_PLAIN_LOCAL = re.compile(r"[\w!#$%&'*+/=?^`{|}~.-]{1,64}")


@dataclass(frozen=True)
class Address:
    address: str  # as written
    name: str = ""

    @property
    def key(self) -> str:
        """What two addresses are compared by: case does not make another mailbox."""
        return self.address.lower()


@dataclass(frozen=True)
class Sender(Address):
    source: str = ""  # the header it came from, "envelope", or "" for none


# Control characters other than folding white space (tab, CR, LF); DEL too.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def header_values(message: Message, name: str) -> list[str]:
    """Raw (undecoded) values of header `name`, in order; never raises."""
    lowered = name.lower()
    try:
        return [str(v) for k, v in message.raw_items() if k.lower() == lowered]
    except Exception:  # an oddly built message object: nothing to read
        return []


def addresses(values: list[str], *, hint: str | None = None, dotless: bool = False) -> list[Address]:
    """Every valid address in the given raw header values, display names decoded; `dotless`
    takes addresses whose domain is a single label too (see `clean`)."""
    found: list[Address] = []
    for value in values:
        for name, addr in _split(value, dotless):
            address = clean(addr, dotless=dotless)
            if address:
                found.append(Address(address, _name(name, hint)))
    return found


def _split(value: str, dotless: bool = False) -> list[tuple[str, str]]:
    # Unfold only folding white space: a vertical tab or form feed inside an address is a
    # broken address, not a separator ("<ctrl\x0bchar@x>" must not become "char@x", someone else).
    flat = " ".join(_CONTROL.sub("\ufffd", value).split())
    simple = simple_pair(flat)
    if simple is not None:
        pairs = [(simple[0], _decoded_local(simple[1]))]
    else:
        if "<" in flat:
            flat = _SPACED_ANGLE.sub(_quote_spaced, flat)
        if "=?" in flat:
            flat = _ENCODED_WORD.sub(_quote_special, flat)
        try:
            pairs = [(name, _decoded_local(addr)) for name, addr in getaddresses([flat])]
        except Exception:  # the stdlib's parser has raised on hostile input before
            pairs = []
    if any(clean(addr, dotless=dotless) for _, addr in pairs):
        return pairs
    # getaddresses gives up on junk around an address: take what looks like one.
    return [("", match.group(0)) for match in _ADDRESS.finditer(flat)]


def simple_pair(flat: str) -> tuple[str, str] | None:
    """(name, address) of a header value holding one plain address, as `email.utils.getaddresses`
    reads it; None for anything only it can read."""
    match = _SIMPLE.fullmatch(flat.strip())
    if match is None:
        return None
    if match["bare"] is not None:
        return "", match["bare"]
    name = match["quoted"] if match["quoted"] is not None else " ".join(match["name"].split())
    return name, match["angle"]


def _quote_special(match: re.Match[str]) -> str:
    word = match.group(0)
    return f'"{word}"' if _SPECIALS.intersection(word) else word


def _quote_spaced(match: re.Match[str]) -> str:
    local = " ".join(match.group(1).split())
    return f'<"{local}"@{match.group(2)}>' if " " in local else match.group(0)


def _decoded_local(addr: str) -> str:
    """`=?utf-8?Q?agent?=@example.com` as agent@example.com: the address it stands for.

    RFC 2047 allows no encoded-words in an address, but some mailers encode the whole From
    value, and a reply to the encoded form would bounce. The decoded local part is only taken
    when it is a plain local part of its own; anything else (a second @, a space, a bracket)
    keeps the address as written, so an encoded-word can never turn into someone else's address.
    """
    local, at, domain = addr.rpartition("@")
    if not at or "=?" not in local:
        return addr
    from email.header import decode_header

    try:
        decoded = "".join(chunk.decode(charset or "ascii", "replace") if isinstance(chunk, bytes) else chunk
                          for chunk, charset in decode_header(local))
    except Exception:  # an unknown charset, broken base64 (HeaderParseError): not this address
        return addr
    return f"{decoded}@{domain}" if _PLAIN_LOCAL.fullmatch(decoded) else addr


def _name(raw: str, hint: str | None) -> str:
    name = " ".join(decode_value(raw, hint=hint).split()).strip("\"' ")
    return name


_HOST = re.compile(DOMAIN_START + DOMAIN_REST + "{0,62}")


def clean(addr: str, *, dotless: bool = False) -> str:
    """The address if it is one (local@domain with a dotted or bracketed domain), else "".

    `dotless` also takes a domain of one label (`root@intranet`, `user@redacted`): valid
    mail, written by hosts on a private network and by anonymised samples, but in running text
    more often junk than an address, so it is only asked for when nothing better is found.
    """
    addr = addr.strip().strip("<>").strip()
    if addr.lower().startswith("mailto:"):
        addr = addr[7:]
    local, at, domain = addr.rpartition("@")
    # `split` finds whitespace in C by the same test as `str.isspace`: no address has any.
    if not at or not local or not domain or len(addr) > 320 or "\ufffd" in addr:
        return ""
    # No address has white space, but for spaces inside a quoted local part ("a b"@x).
    if addr.split() != [addr] and (domain.split() != [domain] or not QUOTED_LOCAL.fullmatch(local)):
        return ""
    if "." not in domain and not domain.startswith("[") and domain.lower() != "localhost":
        return addr if dotless and _HOST.fullmatch(domain) else ""
    return addr


def system_sender(value: str) -> str:
    """"MAILER-DAEMON" (or kin) when the value names a domainless system sender, else ""."""
    try:
        pairs = getaddresses([" ".join(value.split())])
    except Exception:  # the stdlib's parser has raised on hostile input before
        pairs = []
    for name, addr in pairs + [("", value)]:
        for candidate in (addr, name):
            bare = candidate.strip().strip("<>").strip().strip('"')
            if bare and _SYSTEM.match(bare):
                return bare
    return ""


def find_sender(message: Message, envelope: str | None = None, *, hint: str | None = None) -> Sender:
    """Whose mail this is; Sender("") when neither headers nor envelope name anyone."""
    for header in SENDER_HEADERS:
        values = header_values(message, header)
        for found in addresses(values, hint=hint):
            return Sender(found.address, found.name, header)
    if envelope and clean(envelope):
        return Sender(clean(envelope), "", "envelope")
    # A person on a private network (or an anonymised sample) writes from a one-label domain:
    # their mail, not a mail without a sender.
    for header in SENDER_HEADERS:
        for found in addresses(header_values(message, header), hint=hint, dotless=True):
            return Sender(found.address, found.name, header)
    for value in header_values(message, "From") + header_values(message, "Sender"):
        system = system_sender(value)
        if system:
            return Sender(system, "", "From")
    if envelope and system_sender(envelope):
        return Sender(system_sender(envelope), "", "envelope")
    return Sender("")
