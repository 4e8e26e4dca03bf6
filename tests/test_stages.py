"""The pipeline's shape: one module per stage, each saying what it decides, each in the order once."""

from __future__ import annotations

import importlib
import pkgutil

import gateway.stages
from gateway.stages.pipeline import BATCH, ITEM, PREPARE

NOT_STAGES = {"base", "context", "messages", "pipeline"}


def _stage_modules() -> dict[str, object]:
    names = [m.name for m in pkgutil.iter_modules(gateway.stages.__path__) if m.name not in NOT_STAGES]
    return {name: importlib.import_module(f"gateway.stages.{name}") for name in names}


def test_every_stage_module_is_in_the_pipeline_once_under_its_own_name() -> None:
    declared = [stage.name for stage in (*PREPARE, *BATCH, *ITEM)]
    assert len(declared) == len(set(declared)), declared
    modules = _stage_modules()
    assert sorted(declared) == sorted(modules)
    for name, module in modules.items():
        assert module.STAGE.name == name  # type: ignore[attr-defined]


def test_every_stage_says_what_it_decides() -> None:
    for name, module in _stage_modules().items():
        doc = module.__doc__ or ""
        assert doc.startswith(f"The `{name}` stage"), (name, doc[:60])
        assert len(doc.strip().splitlines()) >= 3, name


def test_the_notify_stage_runs_last_and_for_every_item() -> None:
    assert ITEM[-1].name == "notify" and ITEM[-1].always
    assert [stage.name for stage in ITEM if stage.always] == ["notify"]
