"""`python -m gateway` is the `postdesk` command."""

from gateway.cli import run

run()
