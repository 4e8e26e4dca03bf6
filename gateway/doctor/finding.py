"""One result of a doctor check: OK, WARN or FAIL, what was found, and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str
    fix: str = ""
    # Works, but should be changed: printed as WARN, does not fail the run.
    warn: bool = False

    def line(self) -> str:
        level = "FAIL" if not self.ok else "WARN" if self.warn else "OK"
        head = f"{level:<4}  {self.check:<9} {self.detail}"
        return head if (self.ok and not self.warn) or not self.fix else f"{head} -- fix: {self.fix}"
