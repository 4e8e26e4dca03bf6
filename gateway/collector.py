"""The cyclic garbage collector over a process's life: sparing while it starts, blind at its end.

Start-up (imports, settings, rules, templates, the pipeline) builds some 120,000 container
objects, nearly all of which live as long as the process. With Python's default thresholds
(700, 10, 10) the collector runs dozens of collections while they are built, the full ones
traversing everything built so far, and at exit the interpreter's last collection traverses
all of it once more, only to find nothing to free: together about 0.15 s of a 0.75 s
`postdesk route`.

`starting` raises the first threshold for a command's start (collections become rarer, not
impossible, so cyclic garbage stays bounded whatever the verb does) and freezes what is alive
at exit, so the last collection skips it. `started` is for a process that runs on (the daemon,
its processor process): what start-up built is frozen, out of every later collection's way, and
the default thresholds return. Objects frozen at exit are not finalised by the collector;
Python promises no finaliser at exit for objects still alive, and Postdesk closes its files,
connections and log handlers itself.
"""

from __future__ import annotations

import atexit
import gc

_DEFAULT = gc.get_threshold()
# About one start-up's worth of new containers between collections of the youngest generation.
STARTING_THRESHOLD = 20_000


def starting() -> None:
    """A command starts: collect rarely, and skip the long-lived objects at exit."""
    gc.set_threshold(STARTING_THRESHOLD, _DEFAULT[1], _DEFAULT[2])
    atexit.register(gc.freeze)


def started() -> None:
    """Start-up is over in a process that runs on: freeze what it built, collect as usual from now."""
    gc.freeze()
    gc.set_threshold(*_DEFAULT)
