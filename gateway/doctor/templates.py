"""The mail templates check: each compiles and renders with a sample of what the daemon passes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.config import Config
from gateway.doctor.finding import Finding

if TYPE_CHECKING:
    from gateway.templating import MailTemplates

# What a template may use: the union of what gateway.notify and the sign-in mail pass. A
# template naming anything else fails here, as it would (StrictUndefined) when mail is sent.
SAMPLE_CONTEXT: dict[str, Any] = {
    "tag": "[#100042]", "number": 100042, "subject": "Fire alarm keeps ringing", "customer_name": "Anna Berg",
    "link": "https://support.example/t/100042?token=sample", "sender_name": "Postdesk", "missing": ["Site number"],
    "linked_number": 100007, "linked_tag": "[#100007]", "status": "In progress", "text": "A sample text.",
    "unsubscribe_link": "https://support.example/unsubscribe?token=sample",
    "feedback": [(score, f"https://support.example/rate/{score}") for score in range(1, 6)],
    "title": "Sample notice", "minutes": 15,
}
# Variables only some mails get, on top of the sample above: the staff mail about a ticket
# quotes its history; the answer to an agent's mail lists what was done.
EVENT_CONTEXT: dict[str, dict[str, Any]] = {
    "agent_notice": {"history": [{"when": "2026-11-23 09:14", "who": "Anna Berg", "kind": "customer",
                                  "text": "The alarm rang again at nine."}], "reply_by_mail": True},
    "agent_command_result": {"ok": True, "lines": ["#take: assigned to you, in progress"]},
}
# Mail the daemon renders without a per-event switch: the confirmation of a new ticket, the
# notices to staff and agents, the answer to an agent's mail and the question to a third party. The other events are required when the notification matrix mails them.
ALWAYS_RENDERED = ("confirmation", "staff_notice", "agent_notice", "agent_command_result", "third_party_question")


def required_events(config: Config) -> list[str]:
    """The mail templates the daemon will ask for in the fallback language."""
    mailed = [event for event, rule in config.notifications.items()
              if rule.customer != "never" and event != "created"]  # "created" mails the confirmation
    return list(dict.fromkeys([*ALWAYS_RENDERED, *mailed]))


def check_templates(config: Config) -> list[Finding]:
    """Every mail template compiles and renders with the sample context; the fallback has them all."""
    from gateway.templating import FALLBACK_LANGUAGE, MailTemplates

    root = Path(config.templates_dir)
    mail = root / "mail"
    if not mail.is_dir():
        return [Finding("templates", False, f"{mail} is not a folder",
                        "set templates_dir to the folder holding mail/<lang>/<event>.txt.j2")]
    templates = MailTemplates(root)
    findings: list[Finding] = []
    counts: dict[str, int] = {}
    for path in sorted(mail.glob("*/*.txt.j2")):
        counts[path.parent.name] = counts.get(path.parent.name, 0) + 1
        findings.extend(_render_problems(templates, path))
    fallback = mail / FALLBACK_LANGUAGE
    missing = [event for event in required_events(config) if not (fallback / f"{event}.txt.j2").is_file()]
    if missing:
        findings.append(Finding("templates", False, f"{fallback}: missing {', '.join(missing)} (the fallback language "
                                "must have every mail the daemon sends)",
                                f"add {', '.join(f'{e}.txt.j2' for e in missing)} to {fallback}"))
    if not findings:
        per_lang = ", ".join(f"{lang} {count}" for lang, count in sorted(counts.items()))
        findings.append(Finding("templates", True, f"{sum(counts.values())} mail template(s) compile and render "
                                f"({per_lang})"))
    return findings


def _render_problems(templates: MailTemplates, path: Path) -> list[Finding]:
    """What is wrong with one template file, rendered as the daemon would (none: it is fine)."""
    from jinja2 import TemplateError, TemplateSyntaxError

    lang, event = path.parent.name, path.name.removesuffix(".txt.j2")
    try:
        rendered = templates.render(event, lang, **SAMPLE_CONTEXT, **EVENT_CONTEXT.get(event, {}))
    except TemplateSyntaxError as exc:
        return [Finding("templates", False, f"{path}:{exc.lineno}: {exc.message}", "correct the Jinja2 syntax on that line")]
    except TemplateError as exc:
        return [Finding("templates", False, f"{path}: {type(exc).__name__}: {exc}",
                        "use only the variables mail templates get: "
                        + ", ".join(sorted({*SAMPLE_CONTEXT, *EVENT_CONTEXT.get(event, {})})))]
    if not rendered.subject:
        return [Finding("templates", False, f"{path}: renders without a subject",
                        "start the file with a `Subject: …` line, then a blank line, then the body")]
    return []
