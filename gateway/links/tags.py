"""The ticket tag in a subject (`[#{number}]` by default): written into our mail, found in replies."""

from __future__ import annotations

import re


class TagFormat:
    """The configured ticket tag (`[#{number}]` by default), for writing and for finding."""

    def __init__(self, template: str) -> None:
        self.template = template
        pattern = re.escape(template).replace(re.escape("{number}"), r"(\d{1,12})")
        self._regex = re.compile(pattern)

    def tag(self, number: int) -> str:
        return self.template.replace("{number}", str(number))

    def find(self, subject: str) -> list[int]:
        return [int(found) for found in self._regex.findall(subject)]
