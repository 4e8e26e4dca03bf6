"""The relay check (EHLO, STARTTLS, login, as the sender will) and the intake's TLS files."""

from __future__ import annotations

import smtplib
import socket
import ssl
from pathlib import Path

from gateway.config import Config
from gateway.doctor.finding import Finding

FIX_RELAY_ADDRESS = "set relay.host and relay.port (POSTDESK_RELAY__HOST, POSTDESK_RELAY__PORT)"


def check_relay(config: Config, timeout: float = 10.0) -> Finding:
    """Connect to the relay and say EHLO (then STARTTLS and login, when the settings ask for them)."""
    relay = config.relay
    where = f"{relay.host}:{relay.port}"
    try:
        client = smtplib.SMTP(relay.host, relay.port, timeout=min(timeout, relay.timeout))
    except ConnectionRefusedError:
        return Finding("relay", False, f"{where} refused the connection: nothing listens there",
                       f"start the relay (e.g. `systemctl start postfix`) or {FIX_RELAY_ADDRESS}")
    except TimeoutError:
        return Finding("relay", False, f"{where} did not answer within {timeout:.0f} s",
                       f"check the host and any firewall between us and it, or {FIX_RELAY_ADDRESS}")
    except socket.gaierror as exc:
        return Finding("relay", False, f"{relay.host}: name does not resolve ({exc.strerror})", FIX_RELAY_ADDRESS)
    except (OSError, smtplib.SMTPException) as exc:
        return Finding("relay", False, f"{where}: {type(exc).__name__}: {exc}", FIX_RELAY_ADDRESS)
    try:
        return _converse(config, client, where)
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


def _converse(config: Config, client: smtplib.SMTP, where: str) -> Finding:
    """EHLO, STARTTLS and login on a connected relay, each failure with its own fix."""
    relay = config.relay
    try:
        code, answer = client.ehlo()
        if code != 250:
            return Finding("relay", False, f"{where} answered EHLO with {code} {answer.decode(errors='replace')}",
                           "allow this host to relay (Postfix: mynetworks) or point the relay elsewhere")
        notes = [f"EHLO {code} from {answer.decode(errors='replace').splitlines()[0]}"]
        if relay.starttls:
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
            notes.append("STARTTLS ok")
        if relay.username:
            client.login(relay.username, relay.password or "")
            notes.append(f"login as {relay.username} ok")
        return Finding("relay", True, f"{where}: " + "; ".join(notes))
    except smtplib.SMTPNotSupportedError as exc:
        return Finding("relay", False, f"{where}: {exc}", "set relay.starttls: false, or enable STARTTLS on the relay")
    except smtplib.SMTPAuthenticationError as exc:
        refused = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        return Finding("relay", False, f"{where}: login refused: {exc.smtp_code} {refused}",
                       "correct relay.username and relay.password")
    except (ssl.SSLError, ssl.CertificateError) as exc:
        return Finding("relay", False, f"{where}: TLS failed: {exc}",
                       "give the relay a certificate valid for its host name, or connect by the name it carries")
    except (OSError, smtplib.SMTPException) as exc:
        return Finding("relay", False, f"{where}: {type(exc).__name__}: {exc}", FIX_RELAY_ADDRESS)


def check_tls(config: Config) -> Finding:
    cert, key = config.smtp.tls_cert, config.smtp.tls_key
    if cert is None or key is None:
        return Finding("tls", True, "smtp.tls_cert/tls_key not set: STARTTLS is not offered on intake")
    for what, path in (("certificate", cert), ("key", key)):
        if not Path(path).is_file():
            return Finding("tls", False, f"{what} {path} does not exist",
                           f"set smtp.tls_{'cert' if what == 'certificate' else 'key'} to the PEM file's path")
        try:
            Path(path).open("rb").close()
        except OSError as exc:
            return Finding("tls", False, f"{what} {path} is not readable: {exc.strerror}",
                           f"let the daemon's user read it (e.g. `chgrp postdesk {path} && chmod g+r {path}`)")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:
        fix = ("the key does not belong to the certificate: use the key it was issued for"
               if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc)
               else "both must be PEM files: the certificate (with its chain) and its unencrypted private key")
        return Finding("tls", False, f"{cert} and {key} do not load as a pair: {exc.reason or exc}", fix)
    return Finding("tls", True, f"{cert} and {key} load as a pair")
