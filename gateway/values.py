"""Small value types that several layers share: ticket priorities, the settings' languages and
the shape of a quoted local part.

This module sits at the bottom of the package and imports nothing of gateway, so that the
settings, the routing rules and the ticket actions can all name the same values without
importing one another.
"""

from __future__ import annotations

import re
from typing import Literal

# How urgent a ticket is; rules set it (`set: {priority: high}`), agents change it.
Priority = Literal["low", "normal", "high", "urgent"]

# The languages a setting may name for mail and pages: those with a catalogue in gateway/locale.
Language = Literal["en", "sv", "ro"]

# RFC 5321 4.1.2 / RFC 5322 3.4.1: a local part in quotes may hold spaces and specials
# ("john smith"@example.com); never a control character, a bare quote or a bare backslash.
QUOTED_LOCAL = re.compile(r'"(?:[^"\\\x00-\x1f\x7f]|\\[\x20-\x7e])+"')
