"""IMAP intake: each configured account's folder imported into the inbound queue, by UID, once.

The package is split by what each part owns:
- `wire`: aioimaplib plus what it lacks (new-mail and connection-lost events), the errors, and
  the encodings of folder names and UID sets;
- `session`: one logged-in connection and the commands the import needs, each bounded in time;
- `cursor`: the import's state in the store (per folder a cursor with its UIDVALIDITY, per
  imported UID a row until the message was moved or flagged), committed with the inbound rows;
- `runner`: the daemon's side, one reconnecting runner per account (`ImapIntake`);
- `probe`: `postdesk imap test`, the same steps read-only.

A run cut off between the commit and the move finds its rows pending on its next connection and
finishes the move, without importing the UIDs again. When the server renumbers a folder (new
UIDVALIDITY), the import starts again from UID 1 and the processor recognises what it already
has by Message-ID and body hash.
"""
