"""SMTP DATA read into one buffer: the message costs its size in memory, not an object per line.

aiosmtpd keeps every line of DATA as its own bytearray in a list until the final dot, then
joins them: for a mail of short lines that is several times the message's size (a 21 MB mail of
20-byte lines held over 200 MB at intake). `LeanData.smtp_DATA` answers exactly as aiosmtpd's
does (the same preconditions, 500 for an over-long line and 552 for too much data, both after
the data is drained, dot-unstuffing per RFC 5321 4.5.2) but appends each line to one growing
buffer. Mixed in before aiosmtpd's `SMTP` in `gateway.intake.smtp.PostdeskSMTP`.
"""

from __future__ import annotations

import asyncio
import logging

from aiosmtpd.smtp import MISSING, SMTP, syntax

log = logging.getLogger("gateway.smtp")
_END = b".\r\n"


class LeanData(SMTP):
    """aiosmtpd's SMTP with a DATA reader that keeps one buffer instead of a list of lines."""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data, problem = await self._read_data()
        if problem or data is None:
            if problem:
                await self.push(problem)
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        self.envelope.content = self.envelope.original_content = data
        status: object = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else str(status))

    async def _read_data(self) -> tuple[bytes | None, str]:
        """The message up to the lone dot, or why it is refused (after reading all of it)."""
        buffer = bytearray()
        limit = self.data_size_limit
        problem = ""
        partial = False  # inside a line longer than the reader's buffer
        while self.transport is not None:
            try:
                line = await self._reader.readuntil(b"\r\n")
            except asyncio.CancelledError:
                log.info("Connection lost during DATA")
                self._writer.close()
                raise
            except asyncio.LimitOverrunError as exc:
                problem = problem or "500 Line too long (see RFC5321 4.5.3.1.6)"
                buffer = bytearray()
                await self._reader.read(exc.consumed)
                partial = True
                continue
            if partial:  # the rest of the over-long line
                partial = False
                continue
            if line == _END:
                return (None if problem else bytes(buffer)), problem
            if problem:
                continue
            if len(line) > self.line_length_limit:
                problem, buffer = "500 Line too long (see RFC5321 4.5.3.1.6)", bytearray()
                continue
            buffer += line[1:] if line.startswith(b".") else line
            if limit and len(buffer) > limit:
                problem, buffer = "552 Error: Too much mail data", bytearray()
        return None, ""
