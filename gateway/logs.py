"""How the daemon's log lines look: with a timestamp on a terminal, journald-ready under systemd.

Under systemd, stderr is a stream into journald, which stamps each line itself and reads a
`<N>` prefix (syslog priority) as the line's level, so `journalctl -u postdesk -p warning` shows
warnings and errors only. There the format drops the timestamp and adds the prefix. A
multi-line record (a traceback) keeps the prefix on every line, so that journald files the
whole traceback at the record's priority instead of the continuation lines at "info".

Events are one line each, naming what an admin searches for: the processor logs
`inbound N <kind> ticket #T message <Message-ID>: <outcome>` per message.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"
# Python levels to syslog priorities (RFC 5424): error 3, warning 4, info 6, debug 7.
PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


def syslog_priority(level: int) -> int:
    return next((priority for threshold, priority in PRIORITIES if level >= threshold), 7)


class JournalFormatter(logging.Formatter):
    """No timestamp (journald adds one) and a `<priority>` prefix on every line of a record."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        first, *rest = super().format(record).splitlines() or [""]
        return "\n".join([prefix + first, *(f"{prefix}  {line}" for line in rest)])


def under_journald(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """True when `stream` is the journald stream systemd connected (JOURNAL_STREAM=dev:inode).

    Comparing device and inode, as systemd documents, keeps a process whose stderr was
    redirected to a file (by a wrapper or a test) from writing prefixes into that file.
    """
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (info.st_dev, info.st_ino) == (int(device), int(inode))


def formatter_for(stream: TextIO, environ: Mapping[str, str] | None = None) -> logging.Formatter:
    return JournalFormatter() if under_journald(stream, environ) else logging.Formatter(PLAIN_FORMAT)


def setup(level: str, stream: TextIO | None = None) -> None:
    """Log to `stream` (stderr) at `level`, formatted for a terminal or for journald."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_for(stream))
    logging.basicConfig(level=level, handlers=[handler])
