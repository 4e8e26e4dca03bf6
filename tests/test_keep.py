"""Compiled catalogues kept between runs (gateway.keep, gateway.i18n.catalogues).

Each case is a fresh interpreter with its own temporary directory (TMPDIR), because what is
kept is kept for the next process. A kept catalogue must be used, an edited `.po` must never be
answered from the old one, and a damaged or planted file must never be shown.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from gateway import keep

REPO = Path(__file__).resolve().parents[1]

# Translates "Ticket" into Swedish from a copy of the catalogues, as a new process would.
_PROBE = """
import sys
from pathlib import Path
from gateway.i18n import catalogues
catalogues.LOCALE_DIR = Path(sys.argv[1])
print(catalogues.gettext("sv", "Ticket"))
"""


def _translate(locale: Path, tmp: Path) -> str:
    env = {**os.environ, "TMPDIR": str(tmp)}
    done = subprocess.run([sys.executable, "-c", _PROBE, str(locale)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _locale_copy(tmp_path: Path) -> Path:
    locale = tmp_path / "locale"
    shutil.copytree(REPO / "gateway" / "locale", locale)
    return locale


def _kept(tmp: Path) -> list[Path]:
    return sorted((tmp / f"postdesk-{os.getuid()}").glob("catalogue-sv-*.mo"))


def test_a_compiled_catalogue_is_kept_and_used_by_the_next_process(tmp_path: Path) -> None:
    locale, tmp = _locale_copy(tmp_path), tmp_path / "tmp"
    tmp.mkdir()
    assert _translate(locale, tmp) == "Ärende"
    (kept,) = _kept(tmp)
    # The next process reads the kept file: one whose word was changed shows the change.
    kept.write_bytes(kept.read_bytes().replace("Ärende".encode(), "Ärendx".encode()))
    assert _translate(locale, tmp) == "Ärendx"


def test_an_edited_po_file_is_compiled_again_never_answered_from_the_old_one(tmp_path: Path) -> None:
    locale, tmp = _locale_copy(tmp_path), tmp_path / "tmp"
    tmp.mkdir()
    assert _translate(locale, tmp) == "Ärende"
    po = locale / "sv" / "LC_MESSAGES" / "postdesk.po"
    po.write_text(po.read_text(encoding="utf-8").replace('msgstr "Ärende"', 'msgstr "Supportärende"', 1),
                  encoding="utf-8")
    assert _translate(locale, tmp) == "Supportärende"
    assert len(_kept(tmp)) == 2


def test_a_damaged_kept_catalogue_is_compiled_again(tmp_path: Path) -> None:
    locale, tmp = _locale_copy(tmp_path), tmp_path / "tmp"
    tmp.mkdir()
    _translate(locale, tmp)
    (kept,) = _kept(tmp)
    kept.write_bytes(b"\x00" * 40)
    assert _translate(locale, tmp) == "Ärende"


def test_nothing_is_read_from_a_folder_others_can_write(tmp_path: Path) -> None:
    locale, tmp = _locale_copy(tmp_path), tmp_path / "tmp"
    tmp.mkdir()
    _translate(locale, tmp)
    (kept,) = _kept(tmp)
    kept.write_bytes(kept.read_bytes().replace("Ärende".encode(), "Ärendx".encode()))
    kept.parent.chmod(0o777)
    assert _translate(locale, tmp) == "Ärende"
    assert keep.read(kept) is None


def test_names_change_with_any_part() -> None:
    assert keep.name("x", b"ab", "c") == keep.name("x", b"ab", "c")
    assert keep.name("x", b"ab", "c") != keep.name("x", b"a", "bc")
    assert keep.name("x", b"ab", "c") != keep.name("y", b"ab", "c")
