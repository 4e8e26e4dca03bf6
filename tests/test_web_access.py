"""Who sees what: every page and attachment URL against every kind of person, on SQLite and
PostgreSQL. Only the combinations in `ALLOWED` may answer 200; everything else must be the same
404 (so that ticket numbers and attachment ids cannot be probed), and a browser that is not
signed in is sent to the sign-in page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from gateway.links.web import feedback_links
from tests.harness import Database
from tests.web.fixtures import INTERNAL_NOTE, World, build_world
from tests.web.site import AGENT_BURGLARY, AGENT_FIRE, MANAGER_ALFA, Client, local_path, sign_in


@pytest.fixture(scope="module")
def matrix_world(backend: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(backend, tmp_path_factory.mktemp("store"))
    yield built
    built.site.stop()


def _urls(w: World) -> dict[str, str]:
    """Every page and file URL of the world, by a name the expectations below use."""
    urls: dict[str, str] = {"list": "/tickets"}
    for name, number in (("ta", w.ta), ("ta2", w.ta2), ("tb", w.tb)):
        urls[f"{name}"] = f"/tickets/{number}"
        urls[f"{name}.file"] = f"/tickets/{number}/attachments/{w.public_file[number]}"
        urls[f"{name}.note-file"] = f"/tickets/{number}/attachments/{w.internal_file[number]}"
    # Right ticket number, another ticket's attachment id: the id alone must not be enough.
    urls["ta.foreign-file"] = f"/tickets/{w.ta}/attachments/{w.public_file[w.tb]}"
    urls["missing"] = "/tickets/999999"
    urls["missing.file"] = f"/tickets/{w.ta}/attachments/987654"
    return urls


# What each person may open (200); every other URL must answer 404.
ALLOWED: dict[str, set[str]] = {
    "customer A": {"list", "ta", "ta.file"},
    "customer B": {"list", "tb", "tb.file"},
    "manager of A's organisation": {"list", "ta", "ta.file", "ta2", "ta2.file"},
    "agent of another department": {"list", "tb", "tb.file", "tb.note-file"},
    "agent of A's department": {"list", "ta", "ta.file", "ta.note-file", "ta2", "ta2.file", "ta2.note-file"},
}
# Which tickets each person's list shows, and on which ticket pages internal notes appear.
LISTED = {
    "customer A": {"ta", "ta_resolved"},
    "customer B": {"tb"},
    "manager of A's organisation": {"ta", "ta2", "ta_resolved"},
    "agent of another department": {"tb"},
    "agent of A's department": {"ta", "ta2", "ta_resolved"},
}
SEES_NOTES = {"agent of another department": {"tb"}, "agent of A's department": {"ta", "ta2"}}


def _people(w: World) -> dict[str, str]:
    return {
        "customer A": w.anna,
        "customer B": w.cecilia,
        "manager of A's organisation": MANAGER_ALFA,
        "agent of another department": AGENT_BURGLARY,
        "agent of A's department": AGENT_FIRE,
    }


def test_authorization_matrix(matrix_world: World) -> None:
    w = matrix_world
    urls = _urls(w)
    numbers = {"ta": w.ta, "ta2": w.ta2, "tb": w.tb, "ta_resolved": w.ta_resolved}
    anonymous = w.site.client()
    for name, url in urls.items():
        answer = anonymous.get(url)
        assert answer.status == 303 and answer.header("location").startswith("/signin"), (name, answer.status)

    problems: list[str] = []
    for person, address in _people(w).items():
        client: Client = w.site.client()
        sign_in(w.site, client, address)
        for name, url in urls.items():
            answer = client.get(url)
            expected = 200 if name in ALLOWED[person] else 404
            if answer.status != expected:
                problems.append(f"{person} {name} {url}: {answer.status}, expected {expected}")
        listed = set(map(int, re.findall(r'href="/tickets/(\d+)"', client.get("/tickets").text)))
        if listed != {numbers[t] for t in LISTED[person]}:
            problems.append(f"{person}: list shows {sorted(listed)}, expected {sorted(LISTED[person])}")
        for ticket in ("ta", "ta2", "tb"):
            if ticket in ALLOWED[person]:
                shows = INTERNAL_NOTE in client.get(urls[ticket]).text
                if shows != (ticket in SEES_NOTES.get(person, set())):
                    problems.append(f"{person} {ticket}: internal note shown={shows}")
    assert not problems, "\n".join(problems)


def test_missing_and_forbidden_look_the_same(matrix_world: World) -> None:
    w = matrix_world
    client = w.site.client()
    sign_in(w.site, client, w.anna)
    forbidden = client.get(f"/tickets/{w.tb}")
    missing = client.get("/tickets/999999")
    assert forbidden.status == missing.status == 404
    assert forbidden.body == missing.body


def test_feedback_link_rates_once_on_this_backend(matrix_world: World) -> None:
    """The one-click rating's insert-once is dialect-specific SQL: run it on each backend."""
    w = matrix_world
    links = feedback_links(w.site.config, w.ta_resolved)
    client = w.site.client()
    token = client.csrf(local_path(links[5]))
    rated = client.post(local_path(links[5]), {"csrf": token, "score": "5", "comment": "Bra"}).text
    assert "You rated ticket" in rated and "Thank you for your comment." in rated
    other = w.site.client()
    assert "was rated 5 of 5" in other.post(local_path(links[1]), {"csrf": other.csrf("/signin"),
                                                                   "score": "1"}).text
    assert "Thank you for your comment." not in client.post(local_path(links[5]), {"csrf": token, "comment": "X"}).text
    query = "SELECT count(*) FROM rating r JOIN ticket t ON t.id = r.ticket_id WHERE t.number = :n AND r.score = 5"
    assert w.store.scalar(query, n=w.ta_resolved) == 1
