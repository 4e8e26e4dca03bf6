"""Intake: mail taken in and committed to the inbound queue before anyone is told it arrived.

`smtp` (with `data`, the DATA reader) answers SMTP clients, 250 only after the commit; `imap`
imports configured IMAP folders; `pipe` finds the recipients of mail an MTA pipes to `postdesk
inject`. All of them store their rows through `writer`, the one writer of inbound rows. Intake
imports only the store, its writer, config, clock, metrics and validate; whatever needs the
message parsed (the SMTP-time reject rules) is injected by the daemon.
"""
