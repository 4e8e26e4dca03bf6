"""The front door of routing: its API in one place, and `route`, which adds the directory's
answer (organisation, help topic) to the rules' decision.

Callers outside `gateway.routing` import from here (or from `runtime` for the rules in force
in a daemon); the modules behind it are the rule schema (`schema`), loading (`loader`,
`directory`), and evaluation (`evaluate`, with `match`, `actions` and `view`).

How a caller combines them, once per message:

1. At start-up and on reload: `directory = load_directory(path)` then
   `ruleset = load_rules(rules_dir, known=directory)`. Either raises with every problem as
   `file:line: reason`; on a reload, keep the old pair in force until both load.
2. For each of our mailboxes the message was addressed to (To or Cc), build `Facts` with
   `mailbox` set to it and call `route(ruleset, directory, facts)`. Group the resulting
   decisions by department to fan out: two mailboxes routing to one department make one
   ticket, not two.
3. Act on `decision.action`: `deliver` makes or updates the ticket; `quarantine` keeps the
   raw message with the reason; `drop` logs the reason and stores nothing; `reject` can only
   be honoured where the rules run at SMTP time, and is a quarantine otherwise.

What `route` does, in this order:

- If `facts.organisation` is empty, the sender's organisation is looked up by address and
  domain; if `facts.topic` is empty, the help topic is recognised from the body's
  `Ämne:`/`Topic:` line or the subject. Rules then see both (`organisation:`, `topic:`).
- The rules run (`evaluate`). A rule's topic replaces the recognised one.
- The department, by precedence:
  1. a department a matching rule set explicitly (`set: {department: ...}`): an admin who
     names a department means it, e.g. all mail to order@ goes to the order desk;
  2. the responsible department of the sender's organisation: existing customers' tickets
     go to their department whatever the topic (Telenta 4.6.1);
  3. the topic's department, the national team of that business area (Telenta 4.6.2); a
     rule that only sets `topic` lands here, so the organisation still wins over it;
  4. the directory's `default_department`, if any.
  A rule's department that is not in the directory (a `{capture}` that filled in a city
  we have no team for) is dropped with a note, and the next in line applies.
- The topic's required fields are read from the body (`Anläggning: ...`); rule-set fields
  win. For a new customer (no organisation) opening a ticket, `missing_fields` lists what
  they did not give, so the confirmation can ask for it.
"""

from __future__ import annotations

from dataclasses import replace

from gateway.routing.directory import (
    Directory,
    DirectoryError,
    Organisation,
    Topic,
    load_directory,
    missing_fields,
)
from gateway.routing.evaluate import CompiledRule, RuleSet, compile_rule, evaluate
from gateway.routing.facts import Decision, Facts
from gateway.routing.loader import RulesError, check, load_rules
from gateway.routing.yamlsource import Problem

__all__ = [
    "CompiledRule",
    "Decision",
    "Directory",
    "DirectoryError",
    "Facts",
    "Problem",
    "RuleSet",
    "RulesError",
    "check",
    "compile_rule",
    "evaluate",
    "load_directory",
    "load_rules",
    "route",
]


def route(ruleset: RuleSet, directory: Directory, facts: Facts) -> Decision:
    """The rules' decision for one mailbox, completed from the directory (see above)."""
    org = _organisation(directory, facts)
    found = directory.topic(facts.topic) if facts.topic else None
    if found is None and not facts.topic:
        found = directory.topic_for_text(facts.subject, facts.body)
    facts = replace(
        facts,
        organisation=org.name if org else facts.organisation,
        topic=found.name if found else facts.topic,
    )
    decision = evaluate(ruleset, facts)
    if decision.action != "deliver":
        return decision
    # A rule's topic replaces the recognised one; a name not in the directory is kept as is.
    decision.topic = decision.topic or facts.topic
    topic = directory.topic(decision.topic) if decision.topic else None
    if topic is not None:
        decision.topic = topic.name
    _choose_department(decision, directory, org, topic)
    if topic is not None:
        given = directory.parse_fields(facts.body, topic.required_fields)
        decision.fields = {**given, **decision.fields}
        new_customer = org is None and facts.organisation is None
        if new_customer and not facts.followup:
            decision.missing_fields = missing_fields(topic, decision.fields)
    return decision


def _organisation(directory: Directory, facts: Facts) -> Organisation | None:
    if facts.organisation:
        return directory.organisation(facts.organisation)
    return directory.organisation_for(facts.from_addr)


def _choose_department(
    decision: Decision, directory: Directory, org: Organisation | None, topic: Topic | None
) -> None:
    if decision.department_from == "rule":
        known = directory.department(decision.department or "")
        if known is not None:
            decision.department = known.name
            return
        decision.notes.append(f"rule department '{decision.department}' is not in the directory")
        decision.department = decision.department_from = None
    if org is not None and org.department is not None:
        if topic is not None and topic.department not in (None, org.department):
            decision.notes.append(
                f"organisation '{org.name}' routes to {org.department}, "
                f"over topic {topic.name}'s {topic.department}"
            )
        decision.department, decision.department_from = org.department, "organisation"
    elif topic is not None and topic.department is not None:
        decision.department, decision.department_from = topic.department, "topic"
    elif directory.default_department is not None:
        decision.department, decision.department_from = directory.default_department, "default"
