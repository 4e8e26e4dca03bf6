"""A database blip costs a retry, not a lease: failed batches give their rows back at once;
a batch that fails for one item's sake finds that item and completes without it.

The blip is real: a trigger makes PostgreSQL terminate the daemon's own connection in the middle
of a batch, once (a sequence, which no rollback undoes, counts the kills). Leases are long here
(300 s inbound, 120 s outbox, the defaults), so a batch whose leases were not given back would
wait minutes; the tests await the row's final state with the harness's usual 20 s.
"""

from __future__ import annotations

import smtplib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Daemon, Database, Sink, make_mail, unique_address, wait_until

KILL_ONCE = """
CREATE SEQUENCE blip_kills;
CREATE FUNCTION blip() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('blip_kills') = 1 THEN
        PERFORM pg_terminate_backend(pg_backend_pid());
    END IF;
    RETURN NEW;
END $$;
"""


@pytest.fixture
def blip_daemon(fresh_db: Database, tmp_path: Path) -> Iterator[tuple[Daemon, Sink]]:
    sink = Sink().start()
    proc = Daemon(fresh_db, sink, tmp_path / "daemon.log",
                  env_extra={"POSTDESK_WEB__ENABLED": "false", "POSTDESK_METRICS__LISTEN": ""}).start()
    with fresh_db.engine.begin() as conn:
        conn.exec_driver_sql(KILL_ONCE)
    yield proc, sink
    proc.stop()
    sink.stop()


@pytest.mark.parametrize("fresh_db", ["postgresql"], indirect=True)
def test_inbound_lease_released_when_the_batch_loses_its_connection(blip_daemon: tuple[Daemon, Sink]) -> None:
    daemon, sink = blip_daemon
    with daemon.db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TRIGGER blip_message BEFORE INSERT ON message FOR EACH ROW EXECUTE FUNCTION blip()")
    customers = [unique_address("blip") for _ in range(5)]
    with daemon.smtp() as client:
        for customer in customers:
            client.sendmail(customer, ["support@telenta.example"], make_mail(sender=customer, subject="Blip"))
    wait_until(lambda: daemon.db.scalar("SELECT last_value FROM blip_kills") >= 1, what="the connection killed")
    # Given back at once and processed again: not after the 300 s lease.
    wait_until(lambda: daemon.db.scalar("SELECT count(*) FROM inbound WHERE state = 'done'") == len(customers),
               what="the batch processed after the blip")
    assert daemon.db.scalar("SELECT count(*) FROM inbound WHERE lease_until IS NOT NULL") == 0
    assert daemon.db.scalar("SELECT count(*) FROM quarantine") == 0, "a lost connection is not poison"
    for customer in customers:
        sink.wait_for(customer)
    assert daemon.db.scalar("SELECT count(*) FROM ticket") == len(customers)
    assert "batch failed" in daemon.log_path.read_text(errors="replace")


@pytest.mark.parametrize("fresh_db", ["postgresql"], indirect=True)
def test_outbox_results_recorded_after_a_blip_and_nothing_sent_twice(blip_daemon: tuple[Daemon, Sink]) -> None:
    daemon, sink = blip_daemon
    with daemon.db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TRIGGER blip_outbox BEFORE UPDATE ON outbox FOR EACH ROW "
                             "WHEN (NEW.state = 'sent') EXECUTE FUNCTION blip()")
    customers = [unique_address("sent") for _ in range(5)]
    with daemon.smtp() as client:
        for customer in customers:
            client.sendmail(customer, ["support@telenta.example"], make_mail(sender=customer, subject="Blip"))
    for customer in customers:
        sink.wait_for(customer)
    wait_until(lambda: daemon.db.scalar("SELECT last_value FROM blip_kills") >= 1, what="the connection killed")
    # Every row (confirmations and the staff's notices) recorded as sent, none still leased.
    wait_until(lambda: daemon.db.scalar("SELECT count(*) FROM outbox WHERE state <> 'sent' OR lease_until IS NOT NULL")
               == 0 and daemon.db.scalar("SELECT count(*) FROM outbox WHERE kind = 'confirmation'") == len(customers),
               what="every delivery recorded after the blip")
    assert [len(sink.to(customer)) for customer in customers] == [1] * len(customers)


POISON = """
CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF position(convert_to('POISON-ROW', 'UTF8') in NEW.raw) > 0 THEN
        RAISE EXCEPTION 'this inbound row cannot be finished';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER poison_inbound BEFORE UPDATE ON inbound FOR EACH ROW
    WHEN (NEW.state <> 'queued') EXECUTE FUNCTION poison();
"""


@pytest.mark.parametrize("fresh_db", ["postgresql"], indirect=True)
def test_an_item_failing_outside_its_savepoint_does_not_hold_up_its_batch(blip_daemon: tuple[Daemon, Sink]) -> None:
    """The poison row can be neither finished nor quarantined (a trigger refuses both, as a
    broken constraint would): the batch used to fail and be retried whole, for ever."""
    daemon, sink = blip_daemon
    with daemon.db.engine.begin() as conn:
        conn.exec_driver_sql(POISON)
    customers = [unique_address("batch") for _ in range(8)]
    poison = make_mail(sender="poison@kund.example", subject="POISON-ROW")
    with daemon.smtp() as client:
        for index, customer in enumerate(customers):
            if index == 3:
                client.sendmail("poison@kund.example", ["support@telenta.example"], poison)
            client.sendmail(customer, ["support@telenta.example"], make_mail(sender=customer, subject="Larm"))
    for customer in customers:
        sink.wait_for(customer)
    wait_until(lambda: daemon.db.scalar("SELECT count(*) FROM inbound WHERE state = 'done'") == len(customers),
               what="the rest of the batch done")
    state, claim = daemon.db.rows("SELECT state, claim FROM inbound WHERE mail_from = 'poison@kund.example'")[0]
    assert state == "queued" and claim is None, "set aside, not leased for ever"
    assert [len(sink.to(customer)) for customer in customers] == [1] * len(customers)


REFUSE_INSERT = """
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF position(convert_to('REFUSED-ROW', 'UTF8') in NEW.raw) > 0 THEN
        RAISE EXCEPTION 'this inbound row cannot be stored';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_inbound BEFORE INSERT ON inbound FOR EACH ROW EXECUTE FUNCTION refuse();
"""


@pytest.mark.parametrize("fresh_db", ["postgresql"], indirect=True)
def test_a_message_the_database_refuses_gets_451_alone(blip_daemon: tuple[Daemon, Sink]) -> None:
    """Many clients at once share group commits with a message the database refuses."""
    daemon, _sink = blip_daemon
    with daemon.db.engine.begin() as conn:
        conn.exec_driver_sql(REFUSE_INSERT)
    codes: dict[str, list[int]] = {"good": [], "refused": []}
    lock, start = threading.Lock(), threading.Barrier(9)

    def client(kind: str, count: int) -> None:
        start.wait()
        with daemon.smtp() as smtp:
            for _ in range(count):
                sender = unique_address(kind)
                raw = make_mail(sender=sender, subject="REFUSED-ROW" if kind == "refused" else "Larm")
                try:
                    smtp.sendmail(sender, ["support@telenta.example"], raw)
                    code = 250
                except smtplib.SMTPDataError as exc:
                    code = exc.smtp_code
                with lock:
                    codes[kind].append(code)

    threads = [threading.Thread(target=client, args=("good", 25)) for _ in range(8)]
    threads.append(threading.Thread(target=client, args=("refused", 25)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert codes["refused"] == [451] * 25
    assert codes["good"] == [250] * 200, f"{codes['good'].count(451)} good messages got 451"
    assert daemon.db.scalar("SELECT count(*) FROM inbound") == 200
