"""Files kept between runs to save work a verb would otherwise repeat: a private cache folder.

Some results cost a verb's start tens of milliseconds and depend only on files of this version
(the empty store's image, compiled catalogues). They are kept in a folder of this user's own in
the temporary directory, each named by a digest of what decides its content, so a changed input
is never answered from an old file. The folder must be this user's and closed to others, or
nothing is read from it: a file planted there could change what a verb shows. Every failure
(no folder, a full disk, a damaged file) only means doing the work again.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path


def folder() -> Path:
    return Path(tempfile.gettempdir()) / f"postdesk-{os.getuid()}"


def name(kind: str, *parts: bytes | str) -> str:
    """`kind-<digest of parts>`: a file name that changes whenever any part does."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big") + data)
    return f"{kind}-{digest.hexdigest()[:24]}"


def private(place: Path) -> bool:
    """The folder is this user's alone: nobody else could have put a file there."""
    try:
        info = place.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def read(path: Path) -> bytes | None:
    """The kept file's bytes, or None when it is missing or its folder is not private."""
    if not private(path.parent):
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def write(path: Path, data: bytes) -> None:
    """Keep `data` at `path`, creating the private folder; written aside and renamed, so a verb
    started meanwhile reads the old file or the new one, never half of one."""
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        if not private(path.parent):
            return
        fd, aside = tempfile.mkstemp(dir=path.parent, prefix=".kept-")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(aside, path)
    except OSError:
        Path(aside).unlink(missing_ok=True)
