"""Agents working tickets by mail (DESIGN.md §1 `agents`).

`tokens` signs and reads reply addresses; `proof` decides whether a mail is an agent's (token,
DKIM, or our MTA's Authentication-Results); `commands` parses and applies `#command` lines;
`behalf` finds the customer of a ticket an agent opens for someone (`#customer`, forwards);
`desk` does what an agent's or a third party's mail asks, in the pipeline's transaction.
"""
