"""A real Dovecot for the IMAP tests: private config, free local ports, one user, a maildir.

Started in the foreground (`dovecot -F -c CONFIG`) so that a test can kill and restart it. As root,
Dovecot runs its login processes as `dovenull`, its internal ones as `dovecot`, and the mail
user's as `nobody`; as another user, everything runs as that user. The tree lives in its own
directory under /tmp (not under pytest's 0700 tmp_path), because `nobody` must reach the maildir.
"""

from __future__ import annotations

import getpass
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.harness import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
USER, PASSWORD = "agent", "s3cret-pass"


def installed() -> bool:
    return os.access(DOVECOT, os.X_OK) and os.access(DOVEADM, os.X_OK)


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1; clients trust it through SSL_CERT_FILE."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", str(key),
         "-out", str(cert), "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )
    return cert, key


def _users() -> tuple[str, str, str, int]:
    """(login user, internal user, mail user, first valid uid) for this machine."""
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        return "dovenull", "dovecot", "nobody", nobody.pw_uid
    me = getpass.getuser()
    return me, me, me, os.getuid()


class Dovecot:
    """One private Dovecot: IMAP with STARTTLS on `port`, implicit TLS on `tls_port`."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="postdesk-dovecot-"))
        self.root.chmod(0o711)
        self.port, self.tls_port = free_port(), free_port()
        self.config = self.root / "dovecot.conf"
        self.log_path = self.root / "dovecot.log"
        self.proc: subprocess.Popen[bytes] | None = None
        login_user, internal_user, mail_user, first_uid = _users()
        mail = self.root / "mail"
        mail.mkdir()
        shutil.chown(mail, mail_user)
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        dh = Path("/usr/share/dovecot/dh.pem")
        self.config.write_text(f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
instance_name = postdesk-test-{self.port}
log_path = {self.log_path}
protocols = imap
listen = 127.0.0.1
default_internal_user = {internal_user}
default_login_user = {login_user}
first_valid_uid = {first_uid}
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
{f"ssl_dh = <{dh}" if dh.exists() else ""}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
# No delay after a failed login and no growing penalty per IP: a client that retried in a
# storm would show it within a second, instead of being slowed down by the server.
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
mail_location = maildir:{mail}/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={pwd.getpwnam(mail_user).pw_gid} home={mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
}}
""")

    def start(self, timeout: float = 15) -> Dovecot:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dovecot exited with {self.proc.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"dovecot did not listen within {timeout}s: {self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        # A restart is the server going away whole: no process of the old one may keep serving
        # a connection (login processes outlive their master for the connection they hold).
        for pid in self._leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self._leftovers():
            time.sleep(0.02)

    def _leftovers(self) -> list[int]:
        marker = f"dovecot-postdesk-test-{self.port}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        # Thrown away: no need for the graceful shutdown, which takes a second.
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def login_failures(self) -> int:
        """Failed LOGIN attempts the server saw (auth_verbose logs each one)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return len(re.findall(r"Password mismatch", text))

    @contextmanager
    def imap(self) -> Iterator[imaplib.IMAP4]:
        """A logged-in stdlib client, as another mail program of the same user would be."""
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=15)
        client.login(USER, PASSWORD)
        try:
            yield client
        finally:
            try:
                client.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def append(self, folder: str, *messages: bytes, seen: bool = False) -> None:
        with self.imap() as client:
            for raw in messages:
                typ, data = client.append(_quote(folder), r"(\Seen)" if seen else None, None, raw)
                assert typ == "OK", data

    def deliver(self, folder: str, raw: bytes) -> None:
        """Deliver as a local delivery agent would: `doveadm save`, straight into the maildir."""
        subprocess.run([DOVEADM, "-c", str(self.config), "save", "-u", USER, "-m", folder],
                       input=raw, check=True, capture_output=True, timeout=30)

    def count(self, folder: str) -> int:
        """Messages in `folder` (0 when it does not exist)."""
        with self.imap() as client:
            typ, data = client.status(_quote(folder), "(MESSAGES)")
            if typ != "OK":
                return 0
            found = re.search(rb"MESSAGES (\d+)", data[0] or b"")
            return int(found.group(1)) if found else 0

    def flags(self, folder: str) -> list[str]:
        """The flags of each message in `folder`, in UID order, as one string each."""
        with self.imap() as client:
            client.select(_quote(folder), readonly=True)
            typ, data = client.uid("FETCH", "1:*", "(FLAGS)")
            return [item.decode() for item in data if isinstance(item, bytes)] if typ == "OK" else []

    def exists(self, folder: str) -> bool:
        with self.imap() as client:
            typ, data = client.list('""', _quote(folder))
            return typ == "OK" and data != [None]

    def create(self, folder: str) -> None:
        with self.imap() as client:
            typ, data = client.create(_quote(folder))
            assert typ == "OK", data


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
