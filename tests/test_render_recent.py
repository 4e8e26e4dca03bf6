"""A mail rendered again from the same words is taken from the last renderings, never mixed up.

The staff notices of one new ticket carry the same words for each person of a team; rendering
the template once for them all is a third of the notify step's rendering. These tests use the
shipped templates and count the renderings Jinja makes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jinja2 import Template

from gateway.templating import MailTemplates
from tests.harness import REPO


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = Template.render

    def render(self: Template, *args: Any, **kwargs: Any) -> str:
        calls.append(str(self.name))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Template, "render", render)
    return calls


def _notice(**changes: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"title": "New ticket", "text": "Larmet tjuter.", "tag": "[#300001]",
                               "subject": "Larmet", "number": 300001, "status": "New", "reply_by_mail": True,
                               "sender_name": "Telenta Support", "history": [{"when": "1 dec 16:30", "who": "Per", "kind": "customer", "text": "Hej"}]}
    context.update(changes)
    return context


def test_the_same_words_are_rendered_once(counted: list[str]) -> None:
    templates = MailTemplates(REPO / "templates")
    first = templates.render("agent_notice", "sv", **_notice())
    again = templates.render("agent_notice", "sv", **_notice())
    assert again == first and len(counted) == 1


def test_other_words_or_another_language_are_rendered_again(counted: list[str]) -> None:
    templates = MailTemplates(REPO / "templates")
    base = templates.render("agent_notice", "en", **_notice())
    other_history = templates.render("agent_notice", "en", **_notice(history=[{"when": "1 dec 16:30", "who": "Per", "kind": "customer", "text": "Hej då"}]))
    other_flag = templates.render("agent_notice", "en", **_notice(reply_by_mail=False))
    swedish = templates.render("agent_notice", "sv", **_notice())
    assert len(counted) == 4
    assert len({base.text, other_flag.text, swedish.text}) == 3 and other_history.text != base.text


def test_values_that_are_not_plain_are_rendered_each_time(counted: list[str]) -> None:
    class Words:
        def __str__(self) -> str:
            return "Larmet tjuter."

    templates = MailTemplates(REPO / "templates")
    templates.render("agent_notice", "en", **_notice(text=Words()))
    templates.render("agent_notice", "en", **_notice(text=Words()))
    assert len(counted) == 2


def test_a_cache_that_cannot_be_written_only_costs_a_compile(tmp_path: Path) -> None:
    """Compiled templates are kept in a folder; when that folder is unusable, mail still renders."""
    from gateway import templating

    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder should be")
    templates = MailTemplates(REPO / "templates")
    templates._cache = templating._Cache(directory=str(not_a_folder))
    rendered = templates.render("agent_notice", "en", **_notice())
    assert "[#300001]" in rendered.subject
    # And the stock cache, which this is, would have failed the rendering.
    plain = MailTemplates(REPO / "templates")
    plain._cache = templating.FileSystemBytecodeCache(directory=str(not_a_folder))
    with pytest.raises(OSError):
        plain.render("agent_notice", "en", **_notice())
