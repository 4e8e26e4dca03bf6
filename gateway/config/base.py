"""What every settings section shares: the strict, frozen model base and `host:port` values.

A section rejects keys it does not know (a misspelt key must not be silently ignored) and
cannot be changed once loaded. `parse_hostport` is also what the listeners use to bind.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_hostport(value: str, *, default_port: int | None = None) -> tuple[str, int]:
    """Split `host:port` (or `[v6]:port`) into its parts, raising ValueError with a readable text."""
    text = value.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        if default_port is None:
            raise ValueError(f"expected host:port, got {value!r}")
        host, port = text, str(default_port)
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port with a port from 1 to 65535, got {value!r}")
    return host, int(port)


def check_listen(value: str) -> str:
    """A listener's `host:port`, unchanged when it parses (for a section's field validator)."""
    parse_hostport(value)
    return value
