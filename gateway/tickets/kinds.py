"""What each message of a ticket is, in words: the labels the staff page and staff mail show.

A message row's `direction` (in, out, note), `kind` and `visibility` say what it is; this
module turns them into one label (marked for the catalogues, translated by whoever shows it)
and says whether a row is a copy of mail we sent (the customer saw it as mail) or a note no
customer ever saw.
"""

from __future__ import annotations

from typing import Protocol

from gateway.i18n.catalogues import N_

# Copies of the mail we sent, by the event that sent it.
_SENT = {
    "confirmation": N_("Confirmation"),
    "status_changed": N_("Status mail"),
    "waiting_third_party": N_("Status mail"),
    "closed": N_("Status mail"),
    "reopened": N_("Status mail"),
    "resolved": N_("Resolution mail"),
    "agent_reply": N_("Agent reply as mailed"),
    "info_requested": N_("Question to the customer as mailed"),
    "third_party_question": N_("Question to a third party"),
}
_WRITTEN = {
    ("out", "agent"): N_("Agent reply"),
    ("out", "info_request"): N_("Question to the customer"),
    ("note", "note"): N_("Internal note"),
    ("in", "customer"): N_("Customer"),
    ("in", "agent"): N_("Agent's mail (internal)"),
    ("in", "third_party"): N_("Third party's answer (internal)"),
}


class Labelled(Protocol):
    """What a label is read from: a message row (or a row of the web's history)."""

    @property
    def visibility(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def direction(self) -> str: ...


def is_sent_copy(message: Labelled) -> bool:
    """A copy of mail Postdesk sent (confirmation, status mail…), kept to thread replies."""
    return bool(message.visibility == "mail")


def label(message: Labelled) -> str:
    """The English label of a message row; translate it with the reader's catalogue."""
    if is_sent_copy(message):
        return _SENT.get(message.kind, N_("Mail sent"))
    return _WRITTEN.get((message.direction, message.kind), N_("Internal note") if message.visibility != "public"
                        else N_("Message"))


_EVENTS = {
    "created": N_("created"), "status": N_("status changed"), "assigned": N_("assigned"),
    "first_response": N_("first response"), "note": N_("note"), "department": N_("department changed"),
    "priority": N_("priority changed"), "fields": N_("fields supplied"), "on_behalf": N_("opened for the customer"),
    "rating": N_("rated"), "sla_warning": N_("SLA warning"), "sla_breach": N_("SLA breached"),
    "sla_escalated": N_("SLA breach escalated"), "third_party_asked": N_("third party asked"),
}


def event_label(kind: str) -> str:
    """The English label of an event kind (translate it); an unknown kind as it is stored."""
    return _EVENTS.get(kind, kind)
