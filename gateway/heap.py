"""Large buffers go back to the operating system when they are freed.

glibc's malloc serves big blocks with mmap and returns them on free, but after the first such
free it raises its mmap threshold to that block's size (up to 32 MiB), so the next message's
20 MB buffers come from the heap, which fragments and never shrinks: one 22 MB mail left the
daemon 50 MB larger than it needed. Fixing the threshold turns that adjustment off; small
objects are unaffected. Elsewhere (other C libraries) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
_THRESHOLD = 1024 * 1024


def return_large_buffers() -> bool:
    """Fix glibc's mmap threshold at 1 MiB; True when the C library took the setting."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD))
    except (OSError, AttributeError):
        return False
