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


def secret_in(store_dir: str | Path) -> bytes:
    """The generated secret under `store_dir` as configured (relative to the working directory).

    Every signed link and reply address asks for it, so each folder is looked up once per
    process: resolving the path again each time cost more than the signing."""
    return _stored(os.path.join(os.getcwd(), store_dir))  # an absolute store_dir stays as it is


@cache
def _stored(folder: str) -> bytes:
    """The secret in `folder`, made on first use; read once per process."""
    path = Path(folder).resolve() / "secret.key"
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
