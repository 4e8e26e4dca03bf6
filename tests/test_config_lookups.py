"""What every notice asks the settings, several times a message: who a person is, who works a
department (`Config.agent`, `Config.agents_of`) and the key links are signed with (`secret_key`).

The answers are indexed or kept; they must stay the answers: the staff index follows the
directory when it reloads (`use_staff`), compares addresses and departments without case, and
keeps the first entry of an address listed twice, as the list scan it replaced did; a relative
`store_dir` is still the folder under the working directory of the moment.
"""

from __future__ import annotations

import os
from pathlib import Path

from gateway.config import load_config
from gateway.config.desk import Agent

REPO = Path(__file__).resolve().parents[1]


def test_lookups_follow_the_staff_in_force_without_case(tmp_path: Path) -> None:
    config = load_config(REPO / "config" / "postdesk.yaml",
                         environ={"POSTDESK_SECRET": "staff-secret", "POSTDESK_STORE_DIR": str(tmp_path)})
    first = Agent(name="Johan Eklund", address="johan@telenta.example", departments=("kundtjanst",))
    config.use_staff((first,))
    assert config.agent("JOHAN@telenta.example") is first

    eva = Agent(name="Eva Lind", address="Eva.Lind@Telenta.example", departments=("Fire-National", "fire-national"))
    twin = Agent(name="Eva Twin", address="eva.lind@telenta.example", departments=("service",))
    olle = Agent(name="Olle Berg", address="olle@telenta.example", departments=("fire-national", "Service"))
    config.use_staff((eva, twin, olle))
    assert config.agent(first.address) is None  # the directory reloaded without them
    assert config.agent("EVA.LIND@telenta.example") is eva  # the first of the two entries
    assert [a.name for a in config.agents_of("FIRE-NATIONAL")] == ["Eva Lind", "Olle Berg"]  # each once
    assert [a.name for a in config.agents_of("service")] == ["Eva Twin", "Olle Berg"]
    assert config.agents_of("nobody") == [] and config.agents_of(None) == []

    # What a caller does with the list it got does not change the next answer.
    config.agents_of("service").clear()
    assert len(config.agents_of("service")) == 2
    config.use_staff((olle,))
    assert config.agent("eva.lind@telenta.example") is None
    assert config.agents_of("fire-national") == [olle]


def test_the_generated_key_is_the_one_under_the_store_dir_of_the_moment(tmp_path: Path) -> None:
    config = load_config(REPO / "config" / "postdesk.yaml", environ={"POSTDESK_STORE_DIR": "store"})
    assert not config.secret
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    previous = Path.cwd()
    try:
        os.chdir(tmp_path / "a")
        first = config.secret_key()
        assert first == (tmp_path / "a" / "store" / "secret.key").read_bytes().strip()
        assert config.secret_key() == first
        os.chdir(tmp_path / "b")
        second = config.secret_key()
        assert second == (tmp_path / "b" / "store" / "secret.key").read_bytes().strip() and second != first
        os.chdir(tmp_path / "a")
        assert config.secret_key() == first
    finally:
        os.chdir(previous)
    absolute = load_config(REPO / "config" / "postdesk.yaml", environ={"POSTDESK_STORE_DIR": str(tmp_path / "c")})
    assert absolute.secret_key() == (tmp_path / "c" / "secret.key").read_bytes().strip()
