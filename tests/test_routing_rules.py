"""Routing: rules loaded from real YAML files, the directory, and `route` combining them."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from gateway.routing.directory import (
    Department,
    Directory,
    DirectoryError,
    Organisation,
    Topic,
    load_directory,
    missing_fields,
    parse_fields,
)
from gateway.routing.router import (
    Decision,
    Facts,
    Problem,
    RulesError,
    RuleSet,
    check,
    evaluate,
    load_rules,
    route,
)

REPO = Path(__file__).resolve().parent.parent
SUPPORT = "support@telenta.example"
ORDER = "order@telenta.example"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def ruleset(folder: Path, text: str, known: Directory | None = None) -> RuleSet:
    write(folder, "10-test.yaml", text)
    return load_rules(folder, known=known)


def facts(**given: Any) -> Facts:
    given.setdefault("mailbox", SUPPORT)
    given.setdefault("from_addr", "kund@example.com")
    return Facts(**given)


def decide(rules: RuleSet, **given: Any) -> Decision:
    return evaluate(rules, facts(**given))


def matches(folder: Path, match: str, **given: Any) -> bool:
    """Whether a single rule with this flow-style `match` matches a message with these facts."""
    rules = ruleset(folder, f"- name: probe\n  match: {match}\n  set: {{tags: [hit]}}\n")
    return decide(rules, **given).matched == ["probe"]


def org_name(directory: Directory, address: str) -> str | None:
    org = directory.organisation_for(address)
    return org.name if org else None


def problems(folder: Path, known: Directory | None = None) -> list[str]:
    return [str(problem) for problem in check(folder, known)]


@pytest.fixture
def known() -> Directory:
    return Directory(
        departments=[
            Department("fire-national", manager="brand@telenta.example"),
            Department("fire-stockholm", parent="fire-national"),
            Department("fire-goteborg", parent="fire-national"),
            Department("orders"),
            Department("sales"),
        ],
        organisations=[
            Organisation("Stockholms stad", ["stockholm.example"], "fire-stockholm"),
            Organisation("Brf Solgläntan", [], "orders", members=["styrelsen@mail.example"]),
            Organisation("Utan avdelning", ["utan.example"]),
        ],
        topics=[
            Topic("Brandlarm", "fire-national", ["municipality", "facility", "occurred_at"]),
            Topic("Order", "orders", ["municipality"]),
            Topic("Säljkontakt", "sales", [], ["sales"]),
        ],
        default_department="sales",
    )


# -- match fields ----------------------------------------------------------------------------


FIELD_CASES = [
    # (match, facts, expected)
    ("{to: Support@Telenta.example}", {}, True),
    ("{to: support@telenta.example}", {"mailbox": ORDER}, False),
    ("{to: {one_of: [order@telenta.example, support@telenta.example]}}", {}, True),
    ("{to: {regex: '^(support|service)@'}}", {}, True),
    ("{to: {regex: '^(order|service)@'}}", {}, False),
    ("{cc: boss@example.com}", {"cc": ["x@example.com", "Boss@Example.com"]}, True),
    ("{cc: boss@example.com}", {"cc": []}, False),
    ("{from: KUND@example.com}", {}, True),
    ("{from: other@example.com}", {}, False),
    ("{from_domain: example.com}", {}, True),
    ("{from_domain: example.com}", {"from_addr": "a@larm.example.com"}, False),
    ("{from_domain: .example.com}", {"from_addr": "a@larm.example.com"}, True),
    ("{from_domain: .example.com}", {"from_addr": "a@Example.COM"}, True),
    ("{from_domain: .example.com}", {"from_addr": "a@badexample.com"}, False),
    ("{from_domain: {one_of: [a.example, .example.com]}}", {"from_addr": "a@x.example.com"}, True),
    ("{subject: Brandlarm}", {"subject": "brandlarm"}, True),
    ("{subject: Brandlarm}", {"subject": "Brandlarm tjuter"}, False),
    ("{body: {contains: KOMMER INTE IN}}", {"body": "Vi kommer inte in i huset"}, True),
    ("{header: {X-Spam-Flag: 'yes'}}", {"headers": {"x-spam-flag": ["YES"]}}, True),
    ("{header: {x-spam-flag: 'yes'}}", {"headers": {"x-spam-flag": ["NO", "yes"]}}, True),
    ("{header: {X-Spam-Flag: 'yes'}}", {"headers": {}}, False),
    ("{header: {X-Spam-Flag: {not: 'yes'}}}", {"headers": {}}, True),
    ("{has_attachment: true}", {"has_attachment": True}, True),
    ("{has_attachment: true}", {"has_attachment": False}, False),
    ("{language: SV}", {"language": "sv"}, True),
    ("{language: sv}", {"language": None}, False),
    ("{organisation: Stockholms stad}", {"organisation": "stockholms STAD"}, True),
    ("{topic: Brandlarm}", {"topic": "Brandlarm"}, True),
    ("{topic: Brandlarm}", {"topic": None}, False),
    ("{followup: true}", {"followup": True}, True),
    ("{followup: false}", {"followup": True}, False),
    ("{business_hours: false}", {"business_hours": False}, True),
    ("{business_hours: false}", {"business_hours": True}, False),
]


@pytest.mark.parametrize(("match", "given", "expected"), FIELD_CASES)
def test_match_field(tmp_path: Path, match: str, given: dict[str, Any], expected: bool) -> None:
    assert matches(tmp_path, match, **given) is expected


OPERATOR_CASES = [
    ("{subject: {equals: 'ORDER 12'}}", "order 12", True),
    ("{subject: {equals: 'order'}}", "order 12", False),
    ("{subject: {contains: Larm}}", "brandLARMet", True),
    ("{subject: {contains: larm}}", "order", False),
    ("{subject: {regex: 'larm\\d+'}}", "ref larm42", True),
    # A regex keeps case unless it says (?i).
    ("{subject: {regex: 'Larm'}}", "larm", False),
    ("{subject: {regex: '(?i)Larm'}}", "larm", True),
    ("{subject: {regex: '^larm$'}}", "brandlarm", False),
    ("{subject: {one_of: [Order, Faktura]}}", "faktura", True),
    ("{subject: {one_of: [Order, Faktura]}}", "offert", False),
    ("{subject: {not: {contains: test}}}", "riktigt ärende", True),
    ("{subject: {not: {contains: test}}}", "bara ett TEST", False),
    ("{subject: {not: {not: {contains: test}}}}", "bara ett test", True),
    ("{subject: {not: Order}}", "order", False),
]


@pytest.mark.parametrize(("match", "subject", "expected"), OPERATOR_CASES)
def test_operator(tmp_path: Path, match: str, subject: str, expected: bool) -> None:
    assert matches(tmp_path, match, subject=subject) is expected


GROUP_MATCH = """
    subject: {contains: larm}
    any:
      - from_domain: .stockholm.example
      - all:
          - has_attachment: true
          - not: {language: en}
    not:
      any:
        - subject: {contains: test}
        - header: {auto-submitted: {regex: '^auto-'}}
"""


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"subject": "larm", "from_addr": "a@x.stockholm.example"}, True),
        ({"subject": "larm", "has_attachment": True, "language": "sv"}, True),
        ({"subject": "larm", "has_attachment": True, "language": "en"}, False),
        ({"subject": "larm"}, False),
        ({"subject": "larm test", "from_addr": "a@stockholm.example"}, False),
        (
            {
                "subject": "larm",
                "from_addr": "a@stockholm.example",
                "headers": {"auto-submitted": ["auto-replied"]},
            },
            False,
        ),
        ({"subject": "order", "from_addr": "a@stockholm.example"}, False),
    ],
)
def test_groups_nest(tmp_path: Path, given: dict[str, Any], expected: bool) -> None:
    body = "\n".join("    " + line for line in dedent(GROUP_MATCH).strip().splitlines())
    rules = ruleset(tmp_path, f"- name: groups\n  match:\n{body}\n  set: {{tags: [hit]}}\n")
    assert bool(decide(rules, **given).matched) is expected


def test_no_match_means_every_message(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, "- name: all mail\n  set: {priority: low}\n")
    assert decide(rules, subject="anything").priority == "low"


# -- actions ---------------------------------------------------------------------------------


def test_every_set_action(tmp_path: Path) -> None:
    rules = ruleset(
        tmp_path,
        """
        - name: everything
          set:
            department: fire-national
            topic: Brandlarm
            priority: urgent
            sla: larm-4h
            assignee: johan@telenta.example
            tags: [larm, jour]
            fields: {facility: Storgatan 1}
            confirm: false
        """,
    )
    decision = decide(rules)
    assert decision.matched == ["everything"]
    assert (decision.department, decision.topic, decision.priority) == (
        "fire-national",
        "Brandlarm",
        "urgent",
    )
    assert (decision.sla, decision.assignee) == ("larm-4h", "johan@telenta.example")
    assert decision.tags == ["larm", "jour"]
    assert decision.fields == {"facility": "Storgatan 1"}
    assert decision.confirm is False
    assert (decision.action, decision.action_reason) == ("deliver", None)
    assert decision.department_from == "rule"


def test_defaults_when_nothing_matches(tmp_path: Path) -> None:
    decision = decide(ruleset(tmp_path, "- name: x\n  match: {subject: nej}\n  drop: nope\n"))
    assert decision == Decision()
    assert decision.confirm is True and decision.action == "deliver"


@pytest.mark.parametrize("action", ["quarantine", "drop", "reject"])
def test_terminal_actions(tmp_path: Path, action: str) -> None:
    rules = ruleset(
        tmp_path,
        f"""
        - name: tag first
          set: {{tags: [seen]}}
          continue: true
        - name: stop here
          match: {{subject: {{contains: spam}}}}
          {action}: "550 5.7.1 not wanted here"
        - name: never reached
          set: {{tags: [late]}}
        """,
    )
    decision = decide(rules, subject="SPAM offer")
    assert decision.action == action
    assert decision.action_reason == "550 5.7.1 not wanted here"
    assert decision.matched == ["tag first", "stop here"]
    assert decision.tags == ["seen"]


def test_first_match_wins(tmp_path: Path) -> None:
    rules = ruleset(
        tmp_path,
        """
        - name: first
          match: {subject: {contains: larm}}
          set: {department: fire-national}
        - name: second
          match: {subject: {contains: larm}}
          set: {department: orders, tags: [x]}
        """,
    )
    decision = decide(rules, subject="brandlarm")
    assert decision.matched == ["first"]
    assert decision.department == "fire-national" and decision.tags == []


def test_continue_overrides_and_merges(tmp_path: Path) -> None:
    rules = ruleset(
        tmp_path,
        """
        - name: base
          set: {department: fire-national, priority: high, tags: [a, b], fields: {x: "1", y: "1"}}
          continue: true
        - name: not matching
          match: {subject: nej}
          set: {priority: low}
          continue: true
        - name: refine
          set: {priority: urgent, tags: [b, c], fields: {y: "2"}, confirm: false}
          continue: true
        - name: last
          set: {sla: gold}
        - name: after a rule that stopped
          set: {sla: never}
        """,
    )
    decision = decide(rules)
    assert decision.matched == ["base", "refine", "last"]
    assert decision.department == "fire-national"
    assert decision.priority == "urgent"
    assert decision.tags == ["a", "b", "c"]
    assert decision.fields == {"x": "1", "y": "2"}
    assert decision.confirm is False and decision.sla == "gold"


def test_topic_set_by_a_continued_rule_is_seen_by_later_rules(tmp_path: Path) -> None:
    rules = ruleset(
        tmp_path,
        """
        - name: recognise
          match: {subject: {regex: '(?i)brandlarm'}}
          set: {topic: Brandlarm}
          continue: true
        - name: by topic
          match: {topic: brandlarm}
          set: {priority: high}
        """,
    )
    assert decide(rules, subject="Brandlarm").priority == "high"


def test_captures_fill_placeholders(tmp_path: Path) -> None:
    rules = ruleset(
        tmp_path,
        """
        - name: local team
          match:
            subject: {regex: '(?i)\\b(?P<city>stockholm|goteborg)\\b'}
            header: {x-site: {regex: '^(?P<site>\\d+)$'}}
          set:
            department: "fire-{city}"
            tags: ["site-{site}", "{{literal}}"]
            fields: {facility: "{site} ({city})"}
        """,
    )
    decision = decide(rules, subject="Larm i Goteborg", headers={"x-site": ["4711"]})
    assert decision.department == "fire-Goteborg"
    assert decision.tags == ["site-4711", "{literal}"]
    assert decision.fields == {"facility": "4711 (Goteborg)"}


def test_capture_from_the_any_branch_that_held(tmp_path: Path) -> None:
    rules = ruleset(
        tmp_path,
        """
        - name: either
          match:
            any:
              - all:
                  - subject: {regex: '(?P<city>stockholm)'}
                  - has_attachment: true
              - subject: {regex: '(?P<ref>\\d+)'}
          set: {tags: ["city:{city}", "ref:{ref}"]}
        """,
    )
    # The first branch captured "stockholm" before failing; that capture must not leak.
    assert decide(rules, subject="stockholm 12").tags == ["city:", "ref:12"]


def test_mailbox_index_keeps_rule_order(tmp_path: Path) -> None:
    rules = ruleset(
        tmp_path,
        """
        - name: support only
          match: {to: support@telenta.example}
          set: {tags: [support]}
          continue: true
        - name: everywhere
          set: {tags: [all]}
          continue: true
        - name: order only
          match: {to: {one_of: [ORDER@telenta.example]}}
          set: {tags: [order]}
          continue: true
        - name: support again
          match: {to: support@telenta.example, subject: {contains: x}}
          set: {tags: [x]}
        """,
    )
    assert decide(rules, subject="x").matched == ["support only", "everywhere", "support again"]
    assert decide(rules, mailbox="Order@Telenta.example").tags == ["all", "order"]
    assert decide(rules, mailbox="service@telenta.example").tags == ["all"]


# -- loading ---------------------------------------------------------------------------------


def test_files_load_in_name_order_and_dot_files_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, "20-b.yaml", "- name: b\n  set: {tags: [b]}\n  continue: true\n")
    write(tmp_path, "10-a.yaml", "- name: a\n  set: {tags: [a]}\n  continue: true\n")
    write(tmp_path, "15-empty.yaml", "# nothing yet\n")
    write(tmp_path, ".#10-a.yaml", "this: is not even a list\n")
    write(tmp_path, "30-c.yml", "not: loaded\n")
    rules = load_rules(tmp_path)
    assert [rule.name for rule in rules] == ["a", "b"]
    second = rules.rule("b")
    assert second is not None and (second.file, second.line) == (str(tmp_path / "20-b.yaml"), 1)
    assert decide(rules).tags == ["a", "b"]


def test_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    rules = ruleset(
        tmp_path,
        """
        - name: first
          match: &alarm
            subject: {contains: larm}
          set: &high {priority: high, tags: [a]}
        - name: second
          match: *alarm
          set:
            <<: *high
            tags: [b]
        """,
    )
    assert [(rule.name, rule.line) for rule in rules] == [("first", 1), ("second", 5)]
    assert decide(rules, subject="larm").matched == ["first"]


def test_missing_directory_is_a_problem(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert problems(missing) == [f"{missing}:1: no such directory of rule files"]


def test_problem_text() -> None:
    assert str(Problem("rules/10-topics.yaml", 7, "bad")) == "rules/10-topics.yaml:7: bad"


BROKEN = [
    (
        "bad YAML",
        "- name: a\n  match: {subject: [unclosed\n- name: b\n",
        ["3: not valid YAML: while parsing a flow sequence did not find expected ',' or ']'"],
    ),
    (
        "unknown key",
        "- name: a\n  match:\n    subject: x\n    subjet: y\n  set: {tags: [a]}\n",
        ["4: match.subjet: unknown key (did you mean 'subject'?)"],
    ),
    (
        "unknown operator",
        "- name: a\n  match:\n    subject:\n      startswith: x\n",
        ["4: match.subject.startswith: unknown key"],
    ),
    (
        "wrong type",
        "- name: a\n  match: {has_attachment: 'yes'}\n",
        ["2: match.has_attachment: expected true or false, got a string ('yes')"],
    ),
    (
        "a number where text is wanted",
        "- name: a\n  set:\n    tags: [ok, 5]\n",
        ["3: set.tags[1]: expected a string, got int (5) (quote it)"],
    ),
    (
        "bad regex",
        "- name: a\n  match:\n    body:\n      regex: '(unclosed'\n",
        ["4: match.body.regex: bad regex: missing ), unterminated subpattern at position 0"],
    ),
    (
        "two operators",
        "- name: a\n  match:\n    subject: {equals: a, contains: b}\n",
        [
            "3: match.subject: a condition takes exactly one of equals, contains, regex, "
            "one_of, not; found equals, contains"
        ],
    ),
    (
        "a list where a condition is wanted",
        "- name: a\n  match:\n    from: [a@b.example, c@d.example]\n",
        [
            "3: match.from: expected a text or a mapping with one operator (equals, contains, "
            "regex, one_of, not); for several values use one_of"
        ],
    ),
    (
        "empty condition",
        "- name: a\n  match:\n    subject:\n  set: {tags: [a]}\n",
        ["3: match.subject: no condition given"],
    ),
    (
        "terminal action without a reason",
        "- name: a\n  match: {subject: x}\n  drop:\n",
        ["3: drop: no value given (leave the key out if it is not wanted)"],
    ),
    (
        "empty match",
        "- name: a\n  match:\n  set: {tags: [a]}\n",
        ["2: match: no value given (leave the key out if it is not wanted)"],
    ),
    (
        "empty header mapping",
        "- name: a\n  match:\n    header: {}\n",
        ["3: match.header: Dictionary should have at least 1 item after validation, not 0"],
    ),
    (
        "an alias inside itself",
        "- &loop\n  name: a\n  match: {all: [*loop]}\n",
        ["3: not valid YAML: an alias refers to the collection it is in"],
    ),
    (
        "missing name",
        "- match: {subject: a}\n  set: {tags: [a]}\n",
        ["1: name: required key missing"],
    ),
    (
        "not a list",
        "name: a\nset: {tags: [a]}\n",
        ["1: a rules file is a list of rules, each '- name: ...'"],
    ),
    (
        "unknown priority",
        "- name: a\n  set:\n    priority: extreme\n",
        ["3: set.priority: Input should be 'low', 'normal', 'high' or 'urgent'"],
    ),
    (
        "unknown placeholder",
        "- name: a\n  match: {subject: {regex: '(?P<city>\\w+)'}}\n  set:\n"
        "    department: 'fire-{town}'\n",
        ["4: set.department: unknown placeholder {town}: the rule's regexes capture city"],
    ),
    (
        "placeholder captured only under not",
        "- name: a\n  match:\n    not: {subject: {regex: '(?P<city>\\w+)'}}\n  set:\n"
        "    tags: ['{city}']\n",
        [
            "5: set.tags[0]: unknown placeholder {city}: the rule has no regex with a named "
            "group like (?P<city>...)"
        ],
    ),
    (
        "lone brace",
        "- name: a\n  set:\n    sla: 'gold{'\n",
        [
            "3: set.sla: Single '{' encountered in format string; write a literal brace "
            "twice, {{ or }}"
        ],
    ),
    (
        "two terminal actions",
        "- name: a\n  drop: spam\n  reject: '550 no'\n",
        ["3: reject: only one of quarantine, drop, reject; 'drop' is set too"],
    ),
    (
        "continue with a terminal action",
        "- name: a\n  quarantine: why\n  continue: true\n",
        ["3: continue: has no effect: 'quarantine' ends the evaluation"],
    ),
    (
        "SMTP text on several lines",
        "- name: a\n  reject: |\n    550 no\n    really\n",
        ["2: reject: an SMTP reply text must be one line of printable ASCII"],
    ),
    (
        "duplicate key",
        "- name: a\n  set: {tags: [a]}\n  set: {tags: [b]}\n",
        ["3: duplicate key 'set'"],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN]
)
def test_broken_file_is_reported_with_line(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write(tmp_path, "10-broken.yaml", text)
    assert problems(tmp_path) == [f"{path}:{line}" for line in expected]
    with pytest.raises(RulesError) as raised:
        load_rules(tmp_path)
    assert [str(p) for p in raised.value.problems] == problems(tmp_path)


def test_every_problem_in_every_file_is_reported(tmp_path: Path) -> None:
    first = write(
        tmp_path,
        "10-a.yaml",
        """
        - name: fine
          set: {tags: [a]}
        - name: typo
          mach: {subject: a}
        - name: regex
          match: {subject: {regex: '['}}
        """,
    )
    second = write(tmp_path, "20-b.yaml", "- name: fine\n  set: {tags: [b]}\n")
    third = write(tmp_path, "30-c.yaml", "- name: c\n  match: {subject: 'a\n")
    found = problems(tmp_path)
    assert found[:2] == [
        f"{first}:4: mach: unknown key (did you mean 'match'?)",
        f"{first}:6: match.subject.regex: bad regex: unterminated character set at position 0",
    ]
    assert found[2] == f"{second}:1: name: duplicate rule name (first at {first}:1)"
    assert found[3].startswith(f"{third}:3: not valid YAML")
    assert len(found) == 4


def test_names_are_checked_against_the_directory(tmp_path: Path, known: Directory) -> None:
    path = write(
        tmp_path,
        "10-a.yaml",
        """
        - name: typo in department
          set: {department: fire-nationa}
        - name: unknown topic
          set: {topic: Kaffe}
        - name: unknown topic in a condition
          match: {topic: {one_of: [Brandlarm, Kaffe]}}
          set: {tags: [x]}
        - name: template fits a department
          match: {subject: {regex: '(?P<city>\\w+)'}}
          set: {department: "fire-{city}", topic: brandlarm}
        - name: template fits none
          match: {subject: {regex: '(?P<city>\\w+)'}}
          set: {department: "burglary-{city}"}
        """,
    )
    assert problems(tmp_path, known) == [
        f"{path}:2: set.department: unknown department 'fire-nationa' "
        "(did you mean 'fire-national'?)",
        f"{path}:4: set.topic: unknown topic 'Kaffe'",
        f"{path}:6: match.topic: unknown topic 'Kaffe'",
        f"{path}:13: set.department: no department in the directory fits 'burglary-{{city}}'",
    ]
    # Without a directory the same names are not checked.
    assert problems(tmp_path) == []


def test_shipped_rules_load_against_the_shipped_directory() -> None:
    directory = load_directory(REPO / "config" / "directory.yaml")
    rules = load_rules(REPO / "rules", known=directory)
    assert len(rules) > 0
    decision = route(
        rules,
        directory,
        facts(subject="Brandlarmet i Stockholm tjuter", from_addr="ny@kund.example"),
    )
    assert (decision.topic, decision.department) == ("Brandlarm", "fire-stockholm")
    order = route(rules, directory, facts(mailbox=ORDER, from_addr="x@stockholm.example"))
    assert (order.topic, order.department) == ("Order", "orders")


# -- directory -------------------------------------------------------------------------------


def test_organisation_lookup(known: Directory) -> None:
    assert org_name(known, "a@stockholm.example") == "Stockholms stad"
    assert org_name(known, "A@Larm.Vatten.Stockholm.Example") == "Stockholms stad"
    assert org_name(known, "styrelsen@mail.example") == "Brf Solgläntan"
    assert org_name(known, "grannen@mail.example") is None
    assert org_name(known, "a@notstockholm.example") is None
    assert org_name(known, "a@example") is None


def test_member_address_beats_domain_and_longer_domain_wins() -> None:
    directory = Directory(
        organisations=[
            Organisation("Koncernen", ["telenta.example"]),
            Organisation("Dotterbolaget", ["b.telenta.example"]),
            Organisation("Privat", members=["vd@telenta.example"]),
        ]
    )
    assert org_name(directory, "x@a.b.telenta.example") == "Dotterbolaget"
    assert org_name(directory, "x@a.telenta.example") == "Koncernen"
    assert org_name(directory, "VD@telenta.example") == "Privat"


def test_department_tree(known: Directory) -> None:
    assert [d.name for d in known.ancestors("fire-stockholm")] == ["fire-national"]
    assert known.ancestors("fire-national") == [] and known.ancestors("nope") == []
    assert [d.name for d in known.children("fire-national")] == ["fire-stockholm", "fire-goteborg"]
    assert known.department("Fire-Stockholm") is known.department("fire-stockholm")
    assert known.department("nope") is None


def test_department_cycle_built_in_code_does_not_hang() -> None:
    directory = Directory(departments=[Department("a", parent="b"), Department("b", parent="a")])
    assert [d.name for d in directory.ancestors("a")] == ["b"]


@pytest.mark.parametrize(
    ("subject", "body", "expected"),
    [
        ("Hjälp", "Hej\nHjälpämnesrubrik: Brandlarm\n", "Brandlarm"),
        ("Hjälp", "Ämne: order", "Order"),
        ("Hjälp", "  - Topic: SALES  ", "Säljkontakt"),
        ("Brandlarm", "Ämne: Order", "Order"),
        ("Fråga", "Ämne: Kaffe\nTopic: Order", "Order"),
        ("Brandlarmet tjuter", "", "Brandlarm"),
        ("Re: sales question", "", "Säljkontakt"),
        ("Ordern kom inte", "", "Order"),
        ("Orderbekräftelse saknas", "", None),
        ("Hjälp", "> Ämne: Order", None),
        ("", "", None),
    ],
)
def test_topic_for_text(known: Directory, subject: str, body: str, expected: str | None) -> None:
    topic = known.topic_for_text(subject, body)
    assert (topic.name if topic else None) == expected


def test_parse_fields_reads_swedish_and_english_labels() -> None:
    body = dedent(
        """
        Hej!
        kommun/företag:  Solna stad
        - Anläggning: Storgatan 1, port 2
        När inträffade felet? igår 14:30
        När inträffade felet: igår kl 14:30
        Facility: overridden? no, first wins
        > Kommun: quoted history
        Okänt: ignoreras
        """
    )
    assert parse_fields(body, ["municipality", "facility", "occurred_at", "Okänt fält"]) == {
        "municipality": "Solna stad",
        "facility": "Storgatan 1, port 2",
        "occurred_at": "igår kl 14:30",
    }
    assert parse_fields("Okänt fält: x", ["Okänt fält"]) == {"Okänt fält": "x"}


def test_missing_fields(known: Directory) -> None:
    fire = known.topic("brandlarm")
    assert fire is not None
    assert missing_fields(fire, {"municipality": "Solna", "facility": "  "}) == [
        "facility",
        "occurred_at",
    ]
    assert missing_fields(None, {}) == []


def test_shipped_directory_loads() -> None:
    directory = load_directory(REPO / "config" / "directory.yaml")
    assert set(directory.topics) == {
        "Brandlarm", "Inbrottslarm", "Säljkontakt", "Order", "Passagesystem", "Trygghetslarm"
    }  # fmt: skip
    local = [d.name for d in directory.children("fire-national")]
    assert local == ["fire-stockholm", "fire-goteborg"]
    # The portal form's own label and choice, as its mails carry them.
    form = directory.topic_for_text("", "Hjälpämnesrubrik: Kontakta vår säljorganisation")
    assert form is not None and form.name == "Säljkontakt"
    assert directory.fields["facility"].label == "Anläggning"


def test_directory_problems_have_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "directory.yaml",
        """
        departments:
          fire-national:
          fire-stockholm:
            parent: fire-nationall
          loop-a: {parent: loop-b}
          loop-b: {parent: loop-a}
        organisations:
          A:
            domains: [a.example]
            department: nowhere
          B:
            domains: [b.example, A.example]
        topics:
          Brandlarm:
            department: fire-national
            required_fields: [facility, colour]
          Brand:
            aliases: [brandlarm]
        """,
    )
    with pytest.raises(DirectoryError) as raised:
        load_directory(path)
    assert [str(p) for p in raised.value.problems] == [
        f"{path}:4: unknown department 'fire-nationall'",
        f"{path}:5: 'loop-a' is its own ancestor",
        f"{path}:6: 'loop-b' is its own ancestor",
        f"{path}:10: unknown department 'nowhere'",
        f"{path}:12: domain 'a.example' already belongs to 'A'",
        f"{path}:16: unknown field 'colour' (fields: municipality, facility, occurred_at)",
        f"{path}:18: topic word 'brandlarm' already belongs to 'Brandlarm'",
    ]


def test_directory_schema_problems(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "directory.yaml",
        """
        departments:
          sales:
            manager: not-an-address
            memebers: [a@telenta.example]
        organisations:
          A:
            domains: ["@a.example"]
        """,
    )
    with pytest.raises(DirectoryError) as raised:
        load_directory(path)
    assert [str(p) for p in raised.value.problems] == [
        f"{path}:3: departments.sales.manager: not an e-mail address: 'not-an-address'",
        f"{path}:4: departments.sales.memebers: unknown key (did you mean 'members'?)",
        f"{path}:7: organisations.A.domains[0]: not a domain like telenta.example "
        "(subdomains are included): '@a.example'",
    ]


def test_directory_bad_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "directory.yaml", "departments:\n  a: [\n")
    with pytest.raises(DirectoryError) as raised:
        load_directory(path)
    assert str(raised.value).startswith(f"{path}:3: not valid YAML")


# -- route: rules and directory together ----------------------------------------------------


@pytest.fixture
def topic_rules(tmp_path: Path, known: Directory) -> RuleSet:
    return ruleset(
        tmp_path,
        """
        - name: orders to the order desk
          match: {to: order@telenta.example}
          set: {topic: Order, department: orders}
        - name: fire alarms
          match: {subject: {regex: '(?i)brand'}}
          set: {topic: Brandlarm, priority: high}
        - name: stockholm team
          match: {subject: {regex: '(?i)larm i (?P<city>\\w+)'}}
          set: {department: 'fire-{city}'}
        """,
        known,
    )


def test_organisation_beats_topic(topic_rules: RuleSet, known: Directory) -> None:
    decision = route(topic_rules, known, facts(subject="Brand!", from_addr="a@x.stockholm.example"))
    assert (decision.topic, decision.priority) == ("Brandlarm", "high")
    assert (decision.department, decision.department_from) == ("fire-stockholm", "organisation")
    assert decision.missing_fields == []
    assert decision.notes == [
        "organisation 'Stockholms stad' routes to fire-stockholm, "
        "over topic Brandlarm's fire-national"
    ]


def test_rule_department_beats_organisation(topic_rules: RuleSet, known: Directory) -> None:
    decision = route(topic_rules, known, facts(mailbox=ORDER, from_addr="a@stockholm.example"))
    assert (decision.department, decision.department_from) == ("orders", "rule")


def test_new_customer_goes_to_the_topics_national_team(
    topic_rules: RuleSet, known: Directory
) -> None:
    body = "Kommun/Företag: Solna\nAnläggning: Storgatan 1\n"
    decision = route(topic_rules, known, facts(subject="Brandlarm", body=body))
    assert (decision.department, decision.department_from) == ("fire-national", "topic")
    assert decision.fields == {"municipality": "Solna", "facility": "Storgatan 1"}
    assert decision.missing_fields == ["occurred_at"]
    followup = route(topic_rules, known, facts(subject="Brandlarm", body=body, followup=True))
    assert followup.missing_fields == []


def test_topic_recognised_by_the_directory_when_no_rule_sets_one(
    topic_rules: RuleSet, known: Directory
) -> None:
    decision = route(topic_rules, known, facts(subject="Fråga", body="Ämne: Säljkontakt"))
    assert (decision.topic, decision.department, decision.matched) == ("Säljkontakt", "sales", [])


def test_organisation_without_department_falls_to_topic(
    topic_rules: RuleSet, known: Directory
) -> None:
    decision = route(topic_rules, known, facts(subject="brand", from_addr="a@utan.example"))
    assert (decision.department, decision.department_from) == ("fire-national", "topic")
    # A known customer is not asked for the fields new customers must give.
    assert decision.missing_fields == []


def test_captured_department_is_normalised_or_dropped(
    topic_rules: RuleSet, known: Directory
) -> None:
    decision = route(topic_rules, known, facts(subject="Larm i Stockholm"))
    assert (decision.department, decision.department_from) == ("fire-stockholm", "rule")
    unknown = route(topic_rules, known, facts(subject="Larm i Kiruna"))
    assert (unknown.department, unknown.department_from) == ("sales", "default")
    assert unknown.notes == ["rule department 'fire-Kiruna' is not in the directory"]


def test_rules_see_the_organisation_and_topic_found_by_the_directory(
    tmp_path: Path, known: Directory
) -> None:
    rules = ruleset(
        tmp_path,
        """
        - name: city fire alarms are urgent
          match: {organisation: Stockholms stad, topic: Brandlarm}
          set: {priority: urgent}
        """,
        known,
    )
    decision = route(rules, known, facts(subject="brandlarm", from_addr="a@stockholm.example"))
    assert decision.priority == "urgent"
    # The caller's facts are not changed.
    original = facts(subject="brandlarm")
    route(rules, known, original)
    assert original.topic is None and original.organisation is None


def test_terminal_decision_is_returned_as_is(tmp_path: Path, known: Directory) -> None:
    rules = ruleset(tmp_path, "- name: drop all\n  drop: testing\n", known)
    decision = route(rules, known, facts(from_addr="a@stockholm.example", subject="Brandlarm"))
    assert (decision.action, decision.action_reason) == ("drop", "testing")
    assert decision.department is None
