"""Who is who for routing: `config/directory.yaml`, and the lookups the router needs from it.

- `entries`: departments, organisations and help topics, and `Directory`, which indexes them;
- `forms`: the custom fields and the `Topic:` / `Key: value` lines customers write;
- `loading`: reading and checking the file (`load_directory`, `DirectoryError`).

Callers import the names below from `gateway.routing.directory` itself.
"""

from gateway.routing.directory.entries import Department, Directory, Organisation, Topic, missing_fields
from gateway.routing.directory.forms import DEFAULT_FIELDS, FieldSpec, parse_fields
from gateway.routing.directory.loading import DEFAULT_DIRECTORY, DirectoryError, load_directory

__all__ = [
    "DEFAULT_DIRECTORY",
    "DEFAULT_FIELDS",
    "Department",
    "Directory",
    "DirectoryError",
    "FieldSpec",
    "Organisation",
    "Topic",
    "load_directory",
    "missing_fields",
    "parse_fields",
]
