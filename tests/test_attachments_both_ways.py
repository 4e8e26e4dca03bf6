"""Files both ways, over SMTP: the agent's files reach the customer, the customer's reach staff.

An agent answers with a PDF (and a file over `attachments.max_size`): the customer's mail
carries the PDF byte for byte, the agent hears the big file was not sent. A customer writes
with a photo and a file over the limit: the agent's notice lists the photo with a link and
says what was dropped and why; the customer's confirmation says which file was not accepted.
"""

from __future__ import annotations

import os
import re
import uuid
from email.message import EmailMessage

from tests import deskdaemon
from tests.harness import Daemon, Received, Sink, unique_address, wait_until

EVA = "eva@telenta.example"
LIMIT = 50_000
CONFIG = deskdaemon.config(more=f"attachments: {{max_size: {LIMIT}}}\n")
# A small but real PDF: header, one empty page, cross-reference table and trailer.
PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
       b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
       + os.urandom(3000))


desk = deskdaemon.desk_fixture("files", CONFIG)


def _mail(sender: str, to: str, subject: str, body: str, files: list[tuple[bytes, str, str]]) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Message-ID"] = f"<{uuid.uuid4().hex}@client.example>"
    message.set_content(body)
    for data, content_type, name in files:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message


def _send(desk: Daemon, message: EmailMessage, sender: str, to: str) -> None:
    desk.send(message.as_bytes(policy=message.policy.clone(linesep="\r\n")), sender=sender, to=[to])


def _notice(sink: Sink, customer: str) -> Received:
    return wait_until(lambda: [m for m in sink.to(EVA) if "New ticket" in str(m.message["Subject"])
                               and customer in m.message.get_content()], what="Eva's notice")[0]


def test_agents_pdf_reaches_the_customer_byte_for_byte(desk: Daemon, sink: Sink) -> None:
    customer = unique_address("pdf")
    _send(desk, _mail(customer, "support@telenta.example", "Brandlarmet tjuter igen", "Kan ni skicka en offert?\n", []),
          customer, "support@telenta.example")
    token = str(_notice(sink, customer).message["Reply-To"])
    big = os.urandom(LIMIT + 1000)
    _send(desk, _mail(f"Eva Lind <{EVA}>", token, "Re: offert", "Here is the quote you asked for.\n",
                      [(PDF, "application/pdf", "Offert för källaren.pdf"), (big, "application/zip", "ritningar.zip")]),
          EVA, token)
    reply = wait_until(lambda: [m for m in sink.to(customer) if "quote you asked" in m.message.get_body(("plain",)).get_content()],
                       what="the reply with the PDF")[0]
    files = {part.get_filename(): part.get_content() for part in reply.message.iter_attachments()}
    assert files == {"Offert för källaren.pdf": PDF}, list(files)
    number = re.search(r"\[#(\d+)\]", str(reply.message["Subject"])).group(1)  # type: ignore[union-attr]
    result = wait_until(lambda: [m for m in sink.to(EVA) if f"[#{number}]" in str(m.message["Subject"])
                                 and "Done" in str(m.message["Subject"])], what="Eva told of the dropped file")[0]
    assert "ritningar.zip" in result.message.get_content() and "not sent to the customer" in result.message.get_content()


def test_customers_files_are_listed_for_staff_and_a_dropped_one_is_named_to_both(desk: Daemon, sink: Sink) -> None:
    customer = unique_address("photo")
    photo, big = os.urandom(4000), os.urandom(LIMIT + 1)
    _send(desk, _mail(customer, "support@telenta.example", "Brandlarmet tjuter, se bild", "Se bilden.\n",
                      [(photo, "image/jpeg", "detektor.jpg"), (big, "application/octet-stream", "logg.bin")]),
          customer, "support@telenta.example")
    notice = _notice(sink, customer).message.get_content()
    assert re.search(r"\[file\] detektor\.jpg \(4 kB\): http://\S+/tickets/\d+/attachments/\d+", notice), notice
    assert "logg.bin" in notice and "dropped" in notice and str(LIMIT) in notice, notice
    confirmation = sink.wait_for(customer)[0].message.get_content()
    assert "could not be accepted" in confirmation and "logg.bin" in confirmation
    assert "detektor.jpg" not in confirmation
