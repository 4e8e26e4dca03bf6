"""Messages from the paths an admin names: .eml files, folders of them, and mbox files.

`postdesk route` reads several messages in one process; each comes with a label that says
where it came from ("dir/a.eml", "inbox.mbox#3"). Reading a path never raises: an unreadable
one yields its label with the error instead of bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

_SKIP_SUFFIXES = {".json", ".md", ".yaml", ".yml", ".py"}


def iter_messages(paths: list[Path]) -> Iterator[tuple[str, bytes | None, str]]:
    """(label, raw bytes or None, error) for every message under `paths`, in order."""
    for path in paths:
        if str(path) == "-":
            import sys

            yield "-", sys.stdin.buffer.read(), ""
        elif path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() not in _SKIP_SUFFIXES):
                yield from _from_file(child)
        else:
            yield from _from_file(path)


def _from_file(path: Path) -> Iterator[tuple[str, bytes | None, str]]:
    try:
        with path.open("rb") as handle:
            head = handle.read(5)
    except OSError as exc:
        yield str(path), None, f"cannot read: {exc.strerror or exc}"
        return
    if head == b"From " and _is_mbox(path):
        yield from _from_mbox(path)
        return
    yield str(path), path.read_bytes(), ""


def _is_mbox(path: Path) -> bool:
    """An mbox holds several "From " separated messages; one .eml may start with "From " too."""
    with path.open("rb") as handle:
        count = sum(1 for line in handle if line.startswith(b"From "))
    return count > 1 or path.suffix.lower() in (".mbox", ".mbx", "")


def _from_mbox(path: Path) -> Iterator[tuple[str, bytes | None, str]]:
    import mailbox  # only for mbox files: most runs read .eml files

    box = mailbox.mbox(path, create=False)
    try:
        for index, key in enumerate(box.keys(), start=1):
            yield f"{path}#{index}", box.get_bytes(key), ""
    finally:
        box.close()
