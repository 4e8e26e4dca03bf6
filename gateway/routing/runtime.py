"""The rules in force in a running daemon: loaded at start, reloaded on SIGHUP or when files change.

A reload that fails is logged with every `file:line: reason` and changes nothing: the rules in
force stay in force until a clean set loads. The processor reads `current` once per message,
so a reload never applies half a rule set to one message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from gateway.config import Config
from gateway.routing import staff
from gateway.routing.directory import Directory, DirectoryError, load_directory
from gateway.routing.evaluate import RuleSet
from gateway.routing.loader import RulesError, load_rules
from gateway.routing.yamlsource import Problem

log = logging.getLogger("gateway.rules")


@dataclass(frozen=True)
class Routing:
    directory: Directory
    rules: RuleSet


def load_routing(config: Config) -> Routing:
    """Load the directory and the rules; raises RulesError/DirectoryError with every problem."""
    path = Path(config.rules.directory)
    directory = load_directory(path) if path.exists() else Directory()
    routing = Routing(directory, load_rules(Path(config.rules.dir), known=directory))
    staff.attach(config, directory)
    return routing


def problems_of(exc: RulesError | DirectoryError) -> list[Problem]:
    """Every `file:line: reason` of a failed load, rules or directory alike."""
    return list(exc.problems)


class RoutingState:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.current = load_routing(config)
        self._stamp = self._files_stamp()

    def _files(self) -> list[Path]:
        folder = Path(self.config.rules.dir)
        files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
        return [*files, Path(self.config.rules.directory)]

    def _files_stamp(self) -> tuple[tuple[str, float, int], ...]:
        stamp = []
        for path in self._files():
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            stamp.append((str(path), info.st_mtime, info.st_size))
        return tuple(stamp)

    def reload(self, why: str) -> bool:
        """Try to load the files again; keep the rules in force when they do not load."""
        self._stamp = self._files_stamp()
        try:
            fresh = load_routing(self.config)
        except (RulesError, DirectoryError) as exc:
            problems = problems_of(exc)
            log.error("rules not reloaded (%s): %d problem(s); the rules in force stay in force", why, len(problems))
            for problem in problems:
                log.error("  %s", problem)
            return False
        self.current = fresh
        log.info("rules reloaded (%s): %d rule(s)", why, len(fresh.rules.rules))
        return True

    def check_files(self) -> bool:
        """Reload when a rules file changed since the last look; True if a reload happened."""
        if self._files_stamp() == self._stamp:
            return False
        return self.reload("files changed")
