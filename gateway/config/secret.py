"""The installation's secret when `secret:` is not set: generated once, kept under `store_dir`.

Signed reply addresses, web links and the loop header are all derived from one key. Every
process of an installation must use the same key, so the first one to need it writes it
(readable by the daemon's user only) and every later one reads it back.
"""

from __future__ import annotations

import os
import secrets
from functools import cache
from pathlib import Path


@cache
def stored_secret(store: Path) -> bytes:
    """The generated secret under `store`, made on first use; read once per process."""
    path = store / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written once, readable by the daemon's user only; every instance must share it.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it a moment ago
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def secret_in(store_dir: str | Path) -> bytes:
    """`stored_secret` for `store_dir` as configured: relative to the working directory.

    Every signed link and reply address asks for the key; resolving the folder each time cost
    more than the signing, so each folder is resolved once (per working directory)."""
    return _secret_at(os.path.join(os.getcwd(), store_dir))  # an absolute store_dir stays as it is


@cache
def _secret_at(folder: str) -> bytes:
    return stored_secret(Path(folder).resolve())

