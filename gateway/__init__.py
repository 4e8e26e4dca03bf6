"""Postdesk: an email-first helpdesk gateway.

All code lives in this one import package; see DESIGN.md for the map of its modules.
"""

__version__ = "0.1.0"
