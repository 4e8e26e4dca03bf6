"""Talking to systemd: readiness, stopping and the watchdog, through the sd_notify datagram socket.

The protocol is a datagram of `KEY=value` lines sent to the unix socket named by
`NOTIFY_SOCKET` (a leading `@` names an abstract socket). Outside systemd the variable is unset
and every function here is a no-op, so the daemon never needs to know how it was started.

With `WatchdogSec=` in the unit, systemd sets `WATCHDOG_USEC` and restarts the service when no
`WATCHDOG=1` arrives within that time. The ping runs as a task of the daemon's event loop: a
loop that blocks stops the pings, which is exactly the hang the watchdog is there to catch.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("gateway.systemd")


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send `state` (e.g. "READY=1") to systemd; False when not running under systemd."""
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(state.encode(), address)
    except OSError as exc:
        # A notification that cannot be sent must not stop the daemon; systemd will notice
        # the missing readiness or watchdog ping by itself and act on it.
        log.warning("could not notify systemd (%s): %s", state.split("=", 1)[0], exc)
        return False
    return True


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings (half of WatchdogSec), or None when no watchdog is set.

    systemd sets `WATCHDOG_PID` when the variables could be inherited by children; a process
    whose pid differs must not ping on the service's behalf.
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000 / 2


async def watchdog(stop: asyncio.Event, interval: float) -> None:
    """Ping systemd every `interval` seconds until `stop` is set (the first ping at once)."""
    log.info("systemd watchdog: pinging every %.1f s", interval)
    while not stop.is_set():
        notify("WATCHDOG=1")
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass
