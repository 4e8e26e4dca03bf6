"""`postdesk customer set` for someone who has not written yet: they are created with the
settings given, and their first mail is answered accordingly (their language, their
organisation); for a known customer it changes only what is given."""

from __future__ import annotations

from tests.harness import Daemon, Sink, make_mail


def test_customer_set_creates_a_customer_who_has_not_written(daemon: Daemon, sink: Sink) -> None:
    address = f"ion.{daemon.port}@stockholm.example"
    made = daemon.cli("customer", "set", address, "--language", "ro", "--name", "Ion Popescu")
    assert made.returncode == 0, made.stderr
    out = made.stdout.decode()
    assert "created" in out and "language ro" in out and "organisation Stockholms stad" in out
    row = daemon.db.rows("SELECT name, language, organisation FROM customer WHERE email = :e", e=address)[0]
    assert tuple(row) == ("Ion Popescu", "ro", "Stockholms stad")
    daemon.send(make_mail(sender=address, subject="Brandlarm", name="Ion Popescu"), sender=address)
    confirmation = sink.wait_for(address)[0]
    assert confirmation.message.get_content().startswith("Bună ziua Ion Popescu"), "in the language set before"
    again = daemon.cli("customer", "set", address, "--status-mail", "off")
    assert again.returncode == 0 and "updated" in again.stdout.decode() and "status mail off" in again.stdout.decode()
    assert daemon.db.scalar("SELECT language FROM customer WHERE email = :e", e=address) == "ro"
    assert daemon.cli("customer", "set", "not-an-address").returncode == 2


def test_customer_set_takes_a_time_zone_and_refuses_an_unknown_one(daemon: Daemon, sink: Sink) -> None:
    address = f"ana.{daemon.port}@kund.example"
    made = daemon.cli("customer", "set", address, "--timezone", "Europe/Bucharest")
    assert made.returncode == 0, made.stderr
    assert "time zone Europe/Bucharest" in made.stdout.decode()
    assert daemon.db.scalar("SELECT timezone FROM customer WHERE email = :e", e=address) == "Europe/Bucharest"
    wrong = daemon.cli("customer", "set", address, "--timezone", "Europe/Atlantis")
    assert wrong.returncode == 2 and "unknown time zone" in wrong.stderr.decode()
    assert daemon.db.scalar("SELECT timezone FROM customer WHERE email = :e", e=address) == "Europe/Bucharest"
