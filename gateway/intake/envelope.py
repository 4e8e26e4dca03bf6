"""MAIL FROM and RCPT TO addresses read quickly when they are written plainly, as nearly all are.

aiosmtpd reads the address of every MAIL and RCPT command with the stdlib's RFC 5322 header
parser, which builds a token tree for `<anna@example.se>`: some 60 µs per command, two commands
per mail, on the event loop that answers every client. `QuickAddresses._getaddr` answers a
plain `<dot-atom@domain>` (ASCII, no comments, no quoting) itself, with the same address and the
same rest of the line; anything else (quoted local parts, source routes, comments, domain
literals, SMTPUTF8, the null sender) still goes to aiosmtpd's parser.
`tests/test_smtp_envelope.py` holds the two to the same answers.
"""

from __future__ import annotations

import re

from aiosmtpd.smtp import SMTP

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN = re.compile(rf"<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>")
# After the ">": nothing, or blanks and parameters without a comment (the parser skips the blanks).
_TAIL = re.compile(r"(?:[ \t]+[!-'*-~]*)*")


class QuickAddresses(SMTP):
    """aiosmtpd's SMTP, reading plainly written envelope addresses without the header parser."""

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        found = _PLAIN.match(arg)
        if found is None or not _TAIL.fullmatch(arg, found.end()):
            return super()._getaddr(arg)
        address = found.group(1)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, arg[found.end():].lstrip(" \t")
