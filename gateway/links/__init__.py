"""Links, tokens and the subject tag: what our mail carries that leads back to a ticket.

Low in the layers (it needs only the configuration), so that the notify step, the web pages
and agents' mail read and write them alike: `reply` (signed reply addresses), `web` (sign-in,
ticket, feedback and session tokens and their links), `unsubscribe` (the one-click
unsubscribe link) and `tags` (the ticket tag in a subject).
"""
