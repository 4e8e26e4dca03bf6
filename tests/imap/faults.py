"""A daemon with one fault put in by the tests: `python -m tests.imap.faults FAULT COUNT serve`.

The production code has no test hooks. This wrapper patches the IMAP import from outside, then
runs `postdesk` as `python -m gateway` would, so the daemon under test is the real one with one
seam wrapped:
- `crash-after-commit N`: kill -9 of the whole process as soon as the inbound rows of the first N
  messages are committed, before the server is told to move or flag them;
- `hold-after-commit N`: once N messages are committed, the move waits until the connection
  drops (the test restarts the server in that pause), then goes ahead and fails as it would.
"""

from __future__ import annotations

import functools
import logging
import os
import runpy
import signal
import sys
from collections.abc import Callable
from typing import Any

from gateway.intake.imap import cursor
from gateway.intake.imap.runner import AccountRunner
from gateway.intake.imap.session import Session
from gateway.intake.imap.wire import wait_any

log = logging.getLogger("gateway.imap")
committed = 0


def count_commits(after: Callable[[int], None]) -> None:
    """Wrap the cursor's commit: count what it committed and call `after` with the total."""
    commit = cursor.commit_messages

    @functools.wraps(commit)
    def counted(*args: Any, **kwargs: Any) -> list[int]:
        global committed
        ids = commit(*args, **kwargs)
        committed += len(ids)
        after(committed)
        return ids

    cursor.commit_messages = counted


def crash_after_commit(limit: int) -> None:
    def crash(total: int) -> None:
        if total >= limit:
            os.kill(os.getpid(), signal.SIGKILL)

    count_commits(crash)


def hold_after_commit(limit: int) -> None:
    count_commits(lambda total: None)
    after_import = AccountRunner._after_import
    held = False

    async def hold(self: AccountRunner, session: Session, key: cursor.FolderKey, uids: list[int]) -> None:
        nonlocal held
        if committed >= limit and not held:
            held = True
            log.warning("%s: test fault: holding after a commit until the connection drops", self.name)
            await wait_any((session.protocol.lost,), 60)
        await after_import(self, session, key, uids)

    AccountRunner._after_import = hold  # type: ignore[method-assign]


FAULTS = {"crash-after-commit": crash_after_commit, "hold-after-commit": hold_after_commit}


def main() -> None:
    fault, count, *command = sys.argv[1:]
    FAULTS[fault](int(count))
    sys.argv = ["postdesk", *command]
    runpy.run_module("gateway", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
