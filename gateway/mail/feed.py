"""The stdlib's message parser fed in chunks: half the memory of `email.message_from_bytes`.

`message_from_bytes` hands the parser the whole message at once, and the parser first splits
all of it into a list of lines, then builds each part's body from a second list: for a mail of
short lines two objects per line live at once, many times the message's size. Fed in chunks,
only the chunk's lines wait at any time. The result is the same `Message` (compat32 policy, as
`message_from_bytes` makes it).
"""

from __future__ import annotations

import email.policy
from email.feedparser import BytesFeedParser
from email.message import Message

_CHUNK = 64 * 1024


def message_from_bytes(raw: bytes) -> Message:
    parser = BytesFeedParser(policy=email.policy.compat32)
    view = memoryview(raw)
    for start in range(0, len(raw), _CHUNK):
        parser.feed(bytes(view[start : start + _CHUNK]))
    return parser.close()
