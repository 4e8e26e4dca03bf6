"""The collector over a command's life (gateway.collector): sparing while it starts, blind at its end.

Each case runs a fresh interpreter, because what is measured is a whole start-up: how many full
collections it took, and whether what was alive at exit was frozen before the interpreter's last
collection. Counts, not times: the figures are in bench/cli.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _clean_env() -> dict[str, str]:
    """This environment without POSTDESK_* (CI's POSTDESK_TEST_* would read as unknown settings)."""
    return {key: value for key, value in os.environ.items() if not key.startswith("POSTDESK_")}

# Builds what `postdesk route` builds (settings, rules, pipeline), then reports the collections
# of the older generations it took (each traverses everything built since the last); an atexit handler registered first runs last, after the collector's own.
_PROBE = """
import atexit, gc, json, sys
report = {}
atexit.register(lambda: print(json.dumps({**report, "frozen_at_exit": gc.get_freeze_count()})))
if sys.argv[1] == "starting":
    from gateway import collector
    collector.starting()
from gateway.cli.common import settings
from gateway.dryrun import Router
Router.for_config(settings(None))
report["older_collections"] = sum(gen["collections"] for gen in gc.get_stats()[1:])
report["threshold"] = gc.get_threshold()[0]
"""


def _probe(mode: str) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], cwd=REPO, env=_clean_env(), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_command_starts_with_fewer_collections_and_freezes_what_lives_at_exit() -> None:
    default, spared = _probe("default"), _probe("starting")
    print(f"collections of the older generations while the pipeline is built: {default['older_collections']} "
          f"by default, {spared['older_collections']} with collector.starting()")
    assert default["older_collections"] >= 8, default
    assert spared["older_collections"] <= default["older_collections"] / 4, (default, spared)
    assert spared["threshold"] > default["threshold"]
    # Frozen at exit: the interpreter's last collection does not traverse them.
    assert default["frozen_at_exit"] == 0
    assert spared["frozen_at_exit"] > 50_000, spared


def test_started_freezes_start_up_and_restores_the_default_thresholds() -> None:
    script = """
import gc, json
default = gc.get_threshold()
from gateway import collector
collector.starting()
starting = gc.get_threshold()
import gateway.stages.pipeline
collector.started()
print(json.dumps({"default": default, "starting": starting, "after": gc.get_threshold(),
                  "frozen": gc.get_freeze_count()}))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=_clean_env(), capture_output=True,
                         text=True, check=True, timeout=60)
    seen = json.loads(out.stdout)
    assert seen["starting"][0] > seen["default"][0]
    assert seen["after"] == seen["default"]
    assert seen["frozen"] > 50_000, seen


def test_the_installed_command_and_python_m_gateway_start_through_the_collector() -> None:
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "postdesk"]
    assert script.value == "gateway.cli:run"
    # `python -m gateway` is the same command: an atexit probe sees what was alive frozen.
    probe = ("import atexit, gc, runpy, sys; atexit.register(lambda: print('frozen', gc.get_freeze_count()));"
             "sys.argv = ['postdesk', '--help']; runpy.run_module('gateway', run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=_clean_env(), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    frozen = int(out.stdout.strip().splitlines()[-1].split()[1])
    assert frozen > 1_000, out.stdout
