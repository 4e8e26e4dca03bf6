"""Who is who for routing: departments, customer organisations and help topics, indexed.

- *departments* form a tree per business area: a national team (`fire-national`) with local
  teams under it (`fire-stockholm`). Each has a manager, who answers for tickets not going
  stale, and member agents. A ticket is handed down the tree by people, not by this code.
- *organisations* are existing customers. Their users are known by hand-added member
  addresses or, failing that, by e-mail domain (subdomains included), and most have a
  responsible department that gets all their tickets, whatever the topic.
- *help topics* are the business areas a new customer chooses from. A topic names the
  national department that takes new customers' tickets, the fields such a customer must
  give (`gateway.routing.directory.forms`) and the words that recognise it in a subject line.

`Directory` can be built in code (tests, or organisations kept in the database); only
`gateway.routing.directory.loading` checks the references between entries, with file and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gateway.routing.directory.forms import DEFAULT_FIELDS, FieldSpec, label_key, parse_fields, topic_lines


@dataclass
class Department:
    name: str
    parent: str | None = None
    manager: str | None = None
    members: list[str] = field(default_factory=list)
    title: str = ""
    # Language and time zone of the mail and pages of its customers and agents, when set.
    language: str | None = None
    timezone: str | None = None


@dataclass
class Organisation:
    name: str
    domains: list[str] = field(default_factory=list)
    department: str | None = None
    # The customer's own people who see all the organisation's tickets.
    managers: list[str] = field(default_factory=list)
    # Customer addresses added by hand, e.g. a user writing from a private address.
    members: list[str] = field(default_factory=list)
    # Language of the mail its people get (en, sv, ro), unless a customer has their own.
    language: str | None = None
    # IANA time zone its people read times in (Europe/Bucharest), unless a customer has their own.
    timezone: str | None = None


@dataclass
class Topic:
    name: str
    department: str | None = None
    required_fields: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)


class Directory:
    """Departments, organisations, topics and fields, indexed for the lookups routing makes."""

    def __init__(
        self,
        departments: Iterable[Department] = (),
        organisations: Iterable[Organisation] = (),
        topics: Iterable[Topic] = (),
        fields: Iterable[FieldSpec] | None = None,
        support_manager: str | None = None,
        default_department: str | None = None,
    ) -> None:
        self.departments = {d.name: d for d in departments}
        self.organisations = {o.name: o for o in organisations}
        self.topics = {t.name: t for t in topics}
        self.fields = {f.name: f for f in (DEFAULT_FIELDS if fields is None else fields)}
        # The overall support manager who follows up that every ticket gets answered.
        self.support_manager = support_manager
        # Where a ticket goes that neither a rule, an organisation nor a topic routes.
        self.default_department = default_department
        self._index()

    def _index(self) -> None:
        self._department_by_key = {name.casefold(): d for name, d in self.departments.items()}
        self._children: dict[str, list[Department]] = {}
        for department in self.departments.values():
            if department.parent is not None:
                self._children.setdefault(department.parent, []).append(department)
        # Where two organisations claim the same address or domain, the first keeps it.
        self._by_member: dict[str, Organisation] = {}
        self._by_domain: dict[str, Organisation] = {}
        for org in self.organisations.values():
            for address in (*org.members, *org.managers):
                self._by_member.setdefault(address.strip().lower(), org)
            for domain in org.domains:
                self._by_domain.setdefault(domain.strip().lower().lstrip("."), org)
        self._topic_by_name = {label_key(t.name): t for t in self.topics.values()}
        self._topic_by_word: dict[str, Topic] = {}
        for topic in self.topics.values():
            for word in (topic.name, *topic.aliases):
                self._topic_by_word.setdefault(label_key(word), topic)
        words = sorted(self._topic_by_word, key=len, reverse=True)
        # A whole word or phrase; up to four more letters allow inflections ("brandlarmet").
        self._subject_words = (
            re.compile(r"(?<!\w)(" + "|".join(map(re.escape, words)) + r")\w{0,4}(?!\w)", re.I)
            if words
            else None
        )

    # -- departments -----------------------------------------------------------------------

    def department(self, name: str) -> Department | None:
        """By name, ignoring case: a `{city}` capture keeps the case the customer wrote."""
        return self.departments.get(name) or self._department_by_key.get(name.casefold())

    def ancestors(self, name: str) -> list[Department]:
        """The parent, its parent and so on up to the national team; [] for unknown names."""
        found: list[Department] = []
        current = self.departments.get(name)
        while current is not None and current.parent is not None:
            parent = self.departments.get(current.parent)
            # A directory built in code is not checked; a cycle must not hang the caller.
            if parent is None or parent in found or parent.name == name:
                break
            found.append(parent)
            current = parent
        return found

    def children(self, name: str) -> list[Department]:
        return list(self._children.get(name, ()))

    # -- organisations ---------------------------------------------------------------------

    def organisation(self, name: str) -> Organisation | None:
        return self.organisations.get(name)

    def organisation_for(self, address: str) -> Organisation | None:
        """By a hand-added member address first, then by domain, the longest domain winning."""
        address = address.strip().lower()
        org = self._by_member.get(address)
        if org is not None:
            return org
        labels = address.rpartition("@")[2].split(".")
        for start in range(len(labels) - 1):
            org = self._by_domain.get(".".join(labels[start:]))
            if org is not None:
                return org
        return None

    # -- topics ----------------------------------------------------------------------------

    def topic(self, name: str) -> Topic | None:
        """A topic by its name, ignoring case (aliases are for recognising text, not naming)."""
        return self._topic_by_name.get(label_key(name))

    def topic_for_text(self, subject: str, body: str) -> Topic | None:
        """A `Topic:`/`Ämne:`/`Hjälpämne:` line in the body, else a topic word in the subject."""
        for line in topic_lines(body):
            topic = self._topic_by_word.get(label_key(line))
            if topic is not None:
                return topic
        found = self._subject_words.search(subject) if self._subject_words else None
        return self._topic_by_word.get(label_key(found.group(1))) if found else None

    # -- fields ----------------------------------------------------------------------------

    def parse_fields(self, body: str, names: Iterable[str]) -> dict[str, str]:
        return parse_fields(body, names, self.fields.values())


def missing_fields(topic: Topic | None, fields: Mapping[str, str]) -> list[str]:
    """The topic's required fields that are absent or blank in `fields`."""
    if topic is None:
        return []
    return [name for name in topic.required_fields if not fields.get(name, "").strip()]
