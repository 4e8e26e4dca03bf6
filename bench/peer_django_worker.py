"""Runs inside the peer's own virtual environment: django-helpdesk's mail ingestion, timed.

    <peer venv>/bin/python bench/peer_django_worker.py MAIL_DIR WORK_DIR JOURNAL_MODE

Started by bench/peer_django_helpdesk.py, never by hand. It configures a minimal Django project
in WORK_DIR (settings in this module, a SQLite file, `migrate`, one queue for our support
address), reads every message file of MAIL_DIR, and calls `helpdesk.email.extract_email_metadata`
on each: the function django-helpdesk's own `process_queue` calls for every message it takes
from a mailbox (parse, find or create the ticket, its follow-up, render the submitter's
confirmation). The confirmation is built into MIME bytes and then dropped by the mail backend
below, so no SMTP and no mailbox are on the timed path. JOURNAL_MODE is SQLite's (`wal` as
Postdesk's store, or `delete`, Django's default); both with synchronous=FULL, as Postdesk. Prints one JSON line with the figures.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

MAIL_DIR, WORK_DIR, JOURNAL_MODE = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]


class ComposeAndDrop:
    """A Django mail backend that builds each message's bytes, as a real one must, then drops it."""

    composed = 0  # over all instances: Django makes one per message sent

    def __init__(self, fail_silently: bool = False, **kwargs: Any) -> None:
        pass

    def send_messages(self, messages: list[Any]) -> int:
        for message in messages:
            message.message().as_bytes()
        ComposeAndDrop.composed += len(messages)
        return len(messages)


def configure() -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",
        USE_TZ=True,
        SITE_ID=1,
        ROOT_URLCONF="peer_urls",
        INSTALLED_APPS=[
            "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
            "django.contrib.sessions", "django.contrib.messages", "django.contrib.sites",
            "django.contrib.humanize", "rest_framework", "helpdesk",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(WORK_DIR / "peer.sqlite3"),
                               "OPTIONS": {"init_command": f"PRAGMA journal_mode={JOURNAL_MODE}; PRAGMA synchronous=FULL"}}},
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
                    "OPTIONS": {"context_processors": []}}],
        MEDIA_ROOT=str(WORK_DIR / "media"),
        EMAIL_BACKEND="__main__.ComposeAndDrop",
        DEFAULT_FROM_EMAIL="support@telenta.example",
        # Teams mode needs a third-party teams app; a plain install for mail intake leaves it off.
        HELPDESK_TEAMS_MODE_ENABLED=False,
        LOGGING_CONFIG=None,
    )
    # The URL configuration the ticket links in the confirmation are reversed against.
    (WORK_DIR / "peer_urls.py").write_text(
        'from django.urls import include, path\nurlpatterns = [path("helpdesk/", include("helpdesk.urls"))]\n'
    )
    sys.path.insert(0, str(WORK_DIR))
    django.setup()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    configure()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from helpdesk.email import extract_email_metadata
    from helpdesk.models import FollowUp, Queue, Ticket

    queue = Queue.objects.create(title="Support", slug="support", email_address="support@telenta.example",
                                 allow_email_submission=True, email_box_type="local")
    logger = logging.getLogger("peer.helpdesk")
    logger.setLevel(logging.WARNING)
    # As process_queue does for a local mailbox: each file read and decoded with replacement.
    messages = [path.read_bytes().decode("utf-8", errors="replace") for path in sorted(MAIL_DIR.iterdir())]
    latencies = []
    statements = 0

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    cpu_start, wall_start = time.process_time(), time.perf_counter()
    with connection.execute_wrapper(count):
        for text in messages:
            started = time.perf_counter()
            extract_email_metadata(message=text, queue=queue, logger=logger)
            latencies.append((time.perf_counter() - started) * 1000)
    wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
    import django

    print(json.dumps({
        "messages": len(messages), "tickets": Ticket.objects.count(), "followups": FollowUp.objects.count(),
        "confirmations_composed": ComposeAndDrop.composed, "statements": statements,
        "wall_s": wall, "cpu_s": cpu, "p50_ms": percentile(latencies, .5), "p99_ms": percentile(latencies, .99),
        "max_ms": max(latencies), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "django": django.get_version(), "helpdesk": version("django-helpdesk"),
        "sqlite": connection.Database.sqlite_version,
    }))


if __name__ == "__main__":
    main()
