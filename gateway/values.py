"""Small value types that several layers share: ticket priorities and the settings' languages.

This module sits at the bottom of the package and imports nothing of gateway, so that the
settings, the routing rules and the ticket actions can all name the same values without
importing one another.
"""

from __future__ import annotations

from typing import Literal

# How urgent a ticket is; rules set it (`set: {priority: high}`), agents change it.
Priority = Literal["low", "normal", "high", "urgent"]

# The languages a setting may name for mail and pages: those with a catalogue in gateway/locale.
Language = Literal["en", "sv", "ro"]
