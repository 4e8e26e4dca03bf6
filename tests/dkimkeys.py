"""DKIM for tests: an RSA key made with openssl, a DNS override file publishing it, signing."""

from __future__ import annotations

import base64
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import dkim


@dataclass(frozen=True)
class Key:
    private_pem: bytes
    public_b64: str

    def txt(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public_b64}"


def make_key() -> Key:
    private = subprocess.run(["openssl", "genrsa", "2048"], capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "rsa", "-pubout", "-outform", "DER"], input=private,
                         capture_output=True, check=True).stdout
    return Key(private, base64.b64encode(der).decode())


def publish(path: Path, records: dict[str, Key]) -> Path:
    """A YAML file for `agent_mail.dkim_dns_override`: selector._domainkey.domain -> TXT."""
    path.write_text("".join(f'"{name}": "{key.txt()}"\n' for name, key in records.items()), encoding="utf-8")
    return path


def sign(raw: bytes, key: Key, *, domain: str, selector: str = "mail") -> bytes:
    raw = re.sub(rb"\r\n|\n", b"\r\n", raw)
    header = dkim.sign(raw, selector.encode(), domain.encode(), key.private_pem,
                       include_headers=[b"from", b"to", b"subject", b"message-id"])
    return header + raw
