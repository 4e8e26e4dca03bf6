"""What a running daemon counts for Prometheus: the registry, its counters and histogram.

Counters (mail accepted and refused by reason, deliveries and failures, SLA warnings and
breaches) and the processing-latency histogram are incremented where things happen, through
the functions below. Queue depths and ages are facts of the database, not of one process: they
are read at scrape time by the listener (`gateway.monitor`), so every daemon sharing a
PostgreSQL database reports the same queues.

The metrics live in a `CollectorRegistry` of their own rather than prometheus-client's global
one, so that nothing a library registers there leaks into our /metrics. The registry is
module-level on purpose: counters are facts about this process, like its loggers, and the
places that count (SMTP handler, processor, sender, SLA sweeps) should not need a metrics
object threaded through every constructor. This module loads prometheus-client and nothing
else, so that counting costs a CLI verb that runs the processor (`postdesk route`) no web server.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)
REFUSAL_REASONS = ("relay", "rule", "size", "temp_failure", "no_recipients", "bad_address")
QUEUES = ("inbound", "outbox", "quarantine")

ACCEPTED = Counter("postdesk_messages_accepted", "Messages answered with 250 (committed to the inbound queue).",
                   registry=REGISTRY)
REFUSED = Counter("postdesk_messages_refused", "Messages or recipients refused at SMTP time, by reason.",
                  ["reason"], registry=REGISTRY)
QUEUE_DEPTH = Gauge("postdesk_queue_depth", "Items waiting: inbound queued, outbox pending, quarantine unreleased.",
                    ["queue"], registry=REGISTRY)
QUEUE_AGE = Gauge("postdesk_queue_oldest_age_seconds", "Age of the oldest waiting item (0 when the queue is empty).",
                  ["queue"], registry=REGISTRY)
DATABASE_UP = Gauge("postdesk_database_up", "1 when the last scrape could read the queues from the database.",
                    registry=REGISTRY)
# From receipt (the SMTP 250) to the processor's commit of ticket and confirmation: seconds
# under normal load, minutes when a backlog builds up.
LATENCY = Histogram("postdesk_processing_latency_seconds", "From receipt to processed (ticket and outbox committed).",
                    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600), registry=REGISTRY)
DELIVERIES = Counter("postdesk_deliveries", "Mails the relay accepted.", registry=REGISTRY)
DELIVERY_FAILURES = Counter("postdesk_delivery_failures", "Delivery attempts that failed, temporary or permanent.",
                            ["kind"], registry=REGISTRY)
SLA_WARNINGS = Counter("postdesk_sla_warnings", "SLA warnings raised (a clock close to its target).",
                       registry=REGISTRY)
SLA_BREACHES = Counter("postdesk_sla_breaches", "SLA breaches (a clock past its target).", registry=REGISTRY)

# Every label value exists from the start: a rate() over a series that appears only with the
# first refusal misses that refusal.
for _reason in REFUSAL_REASONS:
    REFUSED.labels(_reason)
for _kind in ("temporary", "permanent"):
    DELIVERY_FAILURES.labels(_kind)


def accepted() -> None:
    ACCEPTED.inc()


def refused(reason: str) -> None:
    """Count one refusal; `reason` is one of REFUSAL_REASONS."""
    REFUSED.labels(reason).inc()


def processed(received_at: datetime, done_at: datetime | None = None) -> None:
    """Observe one inbound item's time from receipt to the processor's commit."""
    done_at = done_at or datetime.now(UTC)
    seconds = max(0.0, (done_at - aware(received_at)).total_seconds())
    if _HANDED_ON is not None:
        _HANDED_ON.append(seconds)
    else:
        LATENCY.observe(seconds)


# In a processor process (`gateway.worker`): latencies kept for the daemon, whose registry
# /metrics serves, instead of this process's own, which nobody reads.
_HANDED_ON: list[float] | None = None


def hand_on_latencies() -> None:
    """From now on, `processed` keeps each latency for `taken` instead of observing it here."""
    global _HANDED_ON
    _HANDED_ON = []


def taken() -> list[float]:
    """The latencies kept since the last call (see `hand_on_latencies`)."""
    global _HANDED_ON
    if _HANDED_ON is None:
        return []
    kept, _HANDED_ON = _HANDED_ON, []
    return kept


def observe_latencies(seconds: list[float]) -> None:
    """Latencies another process measured, observed here."""
    for value in seconds:
        LATENCY.observe(value)


def delivered(count: int = 1) -> None:
    DELIVERIES.inc(count)


def delivery_failed(permanent: bool) -> None:
    DELIVERY_FAILURES.labels("permanent" if permanent else "temporary").inc()


def sla_warning(count: int = 1) -> None:
    SLA_WARNINGS.inc(count)


def sla_breach(count: int = 1) -> None:
    SLA_BREACHES.inc(count)


def aware(moment: datetime) -> datetime:
    # SQLite hands datetimes back without a zone; we store UTC only.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
