"""/metrics and /healthz: counters from real SMTP traffic, queue gauges read from the database,
readiness that turns 503 with a reason when the schema is not the one the code expects.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import smtplib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway import metrics, monitor
from gateway.db.engine import make_engine, upgrade
from gateway.intake.writer import enqueue_inbound
from gateway.web.server import WebServer
from tests.harness import Daemon, Database, Sink, free_port, make_mail, unique_address, wait_until


def get(port: int, path: str, method: str = "GET") -> tuple[int, str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        answer = conn.getresponse()
        return answer.status, answer.getheader("Content-Type", ""), answer.read().decode()
    finally:
        conn.close()


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, keyed by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(body: str, name: str, **labels: str) -> float:
    return samples(body)[(name, tuple(sorted(labels.items())))]


def serving(url: str, check: Callable[[int], Awaitable[None]], stopping: Callable[[], bool] = lambda: False) -> None:
    """Run `check(port)` against a MetricsServer on its own loop, as the daemon would."""
    async def main() -> None:
        port = free_port()
        server = monitor.MetricsServer(f"127.0.0.1:{port}", url, serve=WebServer, stopping=stopping)
        assert await server.start()
        try:
            await check(port)
        finally:
            await server.stop()

    asyncio.run(main())


def test_readiness_follows_the_schema_and_queues_are_read_from_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = make_engine(url)
    engine.connect().close()

    async def before_upgrade(port: int) -> None:
        status, kind, body = await asyncio.to_thread(get, port, "/healthz")
        assert status == 503 and kind == "application/json"
        answer = json.loads(body)
        assert answer["live"] is True and answer["ready"] is False
        assert "schema at revision none" in answer["reason"]
        assert (await asyncio.to_thread(get, port, "/healthz/live"))[0] == 200
        # Without tables the queue gauges cannot be read: counters are still served.
        status, _, body = await asyncio.to_thread(get, port, "/metrics")
        assert status == 200 and value(body, "postdesk_database_up") == 0

    serving(url, before_upgrade)
    upgrade(engine)
    enqueue_inbound(engine, [{"source": "smtp", "mail_from": "a@kund.example", "rcpt_to": "support@telenta.example",
                              "raw": b"Subject: x\r\n\r\nx\r\n"} for _ in range(3)])
    engine.dispose()

    async def after_upgrade(port: int) -> None:
        status, _, body = await asyncio.to_thread(get, port, "/healthz/ready")
        assert status == 200 and json.loads(body)["ready"] is True
        status, kind, body = await asyncio.to_thread(get, port, "/metrics")
        assert status == 200 and kind.startswith("text/plain")
        assert value(body, "postdesk_database_up") == 1
        assert value(body, "postdesk_queue_depth", queue="inbound") == 3
        assert value(body, "postdesk_queue_depth", queue="outbox") == 0
        assert value(body, "postdesk_queue_depth", queue="quarantine") == 0
        assert 0 <= value(body, "postdesk_queue_oldest_age_seconds", queue="inbound") < 60
        assert (await asyncio.to_thread(get, port, "/nothing"))[0] == 404
        assert (await asyncio.to_thread(get, port, "/metrics", "POST"))[0] == 405

    serving(url, after_upgrade)

    async def while_stopping(port: int) -> None:
        status, _, body = await asyncio.to_thread(get, port, "/healthz")
        assert status == 503 and json.loads(body)["reason"] == "stopping"

    serving(url, while_stopping, stopping=lambda: True)


def test_counters_and_the_reserved_sla_names() -> None:
    before = metrics.REGISTRY.get_sample_value
    names = ("postdesk_sla_warnings_total", "postdesk_sla_breaches_total", "postdesk_deliveries_total")
    start = {name: before(name) for name in names}
    metrics.sla_warning()
    metrics.sla_breach()
    metrics.sla_breach()
    metrics.delivered(3)
    assert before("postdesk_sla_warnings_total") == start["postdesk_sla_warnings_total"] + 1  # type: ignore[operator]
    assert before("postdesk_sla_breaches_total") == start["postdesk_sla_breaches_total"] + 2  # type: ignore[operator]
    assert before("postdesk_deliveries_total") == start["postdesk_deliveries_total"] + 3  # type: ignore[operator]
    count = before("postdesk_processing_latency_seconds_count") or 0
    # SQLite gives naive UTC datetimes back; both kinds are accepted.
    metrics.processed(datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=2))
    assert before("postdesk_processing_latency_seconds_count") == count + 1
    assert before("postdesk_processing_latency_seconds_bucket", {"le": "1.0"}) is not None
    assert before("postdesk_messages_refused_total", {"reason": "size"}) is not None


@pytest.mark.parametrize("fresh_db", ["sqlite", "postgresql"], indirect=True)
def test_a_running_daemon_counts_what_it_accepts_refuses_and_delivers(fresh_db: Database, tmp_path: Path) -> None:
    sink = Sink().start()
    port = free_port()
    daemon = Daemon(fresh_db, sink, tmp_path / "daemon.log",
                    env_extra={"POSTDESK_METRICS__LISTEN": f"127.0.0.1:{port}",
                               "POSTDESK_SMTP__MAX_MESSAGE_SIZE": "20000"}).start()
    try:
        senders = [unique_address("metrics") for _ in range(3)]
        for sender in senders:
            daemon.send(make_mail(sender=sender, subject="Metrics please"), sender=sender)
        with daemon.smtp() as client:
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                client.sendmail(senders[0], ["someone@elsewhere.example"], b"Subject: relay\r\n\r\nx\r\n")
        with daemon.smtp() as client:
            with pytest.raises(smtplib.SMTPException) as refused:
                client.sendmail(senders[0], ["support@telenta.example"],
                                make_mail(sender=senders[0], subject="big", body="x" * 40000))
        assert "552" in str(refused.value)
        for sender in senders:
            sink.wait_for(sender)

        def scraped() -> Any:
            status, _, body = get(port, "/metrics")
            done = status == 200 and value(body, "postdesk_deliveries_total") >= 3
            return body if done and value(body, "postdesk_queue_depth", queue="outbox") == 0 else None

        body = wait_until(scraped, timeout=20, what="deliveries counted and the outbox empty")
        assert value(body, "postdesk_messages_accepted_total") == 3
        assert value(body, "postdesk_messages_refused_total", reason="relay") == 1
        assert value(body, "postdesk_messages_refused_total", reason="size") == 1
        assert value(body, "postdesk_queue_depth", queue="inbound") == 0
        assert value(body, "postdesk_processing_latency_seconds_count") == 3  # the processor observed each
        assert value(body, "postdesk_sla_warnings_total") == 0
        assert value(body, "postdesk_sla_breaches_total") == 0
        status, _, health = get(port, "/healthz")
        assert status == 200, health
        assert json.loads(health)["ready"] is True
    finally:
        daemon.stop()
        sink.stop()
