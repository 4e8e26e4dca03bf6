"""Where a sender's signature begins, with or without the `-- ` delimiter.

Peeled off the end of the new text, repeatedly, because signatures stack ("Best regards, /
John", then "--" and a business card, then "Sent from my iPhone"): the delimiter and its
look-alikes (`--`, `____`, `—————`), footers that phones and mail apps add, a sign-off line
("Mvh", "Med vänlig hälsning", "Cu stimă", "Best regards", "Mit freundlichen Grüßen", …) with
the name and contact lines under it, and a closing block of contact lines: the sender's name,
phone numbers, postal addresses, URLs, a company name.
"""

from __future__ import annotations

import re

_MAX_LINES = 12
_CONTACT_BLOCK_LINES = 8
_SHORT = 80
_CARD_WORDS = 9

_SIGN_OFFS = (
    # en
    r"(?:best|kind|warm|warmest|many|kindest)?\s*regards|regards|best|best wishes|cheers|thanks|thank you"
    r"|many thanks|thanks again|thanks in advance|sincerely|yours sincerely|yours truly|yours|all the best|br|rgds"
    r"|talk soon|take care|thanks and regards|thanks & regards|regards and thanks|with regards|yours faithfully"
    r"|faithfully|respectfully|best wishes|warm wishes|kind wishes"
    # sv, da, no
    r"|mvh|m\.v\.h\.?|med vänlig hälsning|med vänliga hälsningar|vänliga hälsningar|vänlig hälsning|hälsningar"
    r"|hälsning|tack|tack på förhand|tack och hälsningar|mvh\s*/|med venlig hilsen|venlig hilsen|vh|hilsen"
    r"|med vennlig hilsen|vennlig hilsen|mange takk|tusen takk|vänligen|bästa hälsningar|varma hälsningar|allt gott"
    # ro
    r"|cu stimă|cu stima|cu respect|cu drag|mulțumesc|multumesc|toate cele bune|o zi bună|o zi buna|salutări"
    r"|salutari|numai bine|cu bine"
    # de
    r"|mit freundlichen grüßen|mit freundlichen grüssen|freundliche grüße|freundliche grüsse|viele grüße"
    r"|viele grüsse|beste grüße|beste grüsse|liebe grüße|lg|mfg|gruß|gruss|grüße|danke|vielen dank|vg"
    r"|herzliche grüße|herzliche grüsse|schöne grüße|schöne grüsse|liebe grüsse"
    # fr
    r"|cordialement|bien cordialement|bien à vous|salutations|sincères salutations|merci|merci beaucoup|bonne journée"
    r"|amicalement|bien amicalement|meilleures salutations|à bientôt"
    # es, it, pt
    r"|saludos|saludos cordiales|un saludo|atentamente|gracias|cordiali saluti|distinti saluti|saluti|grazie"
    r"|atenciosamente|cumprimentos|obrigado|obrigada|abraços|un cordial saludo|muchas gracias|un abrazo|un saluto"
    r"|un caro saluto|cordialmente|saluti cordiali|a presto|um abraço|abraço|melhores cumprimentos"
    # nl, pl, fi, ru, hu, cs
    r"|met vriendelijke groet|met vriendelijke groeten|vriendelijke groet|groeten|groetjes|bedankt"
    r"|hartelijke groet|hartelijke groeten|met hartelijke groet|mvg|groet"
    r"|z poważaniem|pozdrawiam|pozdrowienia|dziękuję|ystävällisin terveisin|terveisin|kiitos"
    r"|serdecznie pozdrawiam|pozdrawiam serdecznie|z wyrazami szacunku|ystävällisesti|parhain terveisin"
    r"|с уважением|спасибо|всего доброго|всего хорошего|с наилучшими пожеланиями|üdvözlettel|tisztelettel"
    r"|köszönöm|köszönettel|üdv|s pozdravem|děkuji"
)
# The sign-off, then perhaps the name on the same line ("Mvh Anna", "Best regards, John D.").
_SIGN_OFF = re.compile(rf"^\s*(?i:{_SIGN_OFFS})\s*[,.!:;/–—-]*\s*(?:[A-ZÀ-ÞĀ-ŽА-Я][\w.'’-]*(?:\s+[A-ZÀ-ÞĀ-ŽА-Я][\w.'’-]*){{0,3}})?"
                       r"\s*[,.!]*\s*\W{0,3}\s*$")
# Gratitude closes a message by itself ("Thanks!"); only with a name below is it a sign-off.
_GRATITUDE = re.compile(r"(?i)^\s*(?:thanks|thank you|many thanks|tack|merci|danke|gracias|grazie|obrigad[oa]|bedankt"
                        r"|kiitos|спасибо|köszönöm|dziękuję|mulțumesc|multumesc|takk|tak)\b")
_DELIMITER = re.compile(r"^(?:--|-- |—{2,}|–{2,}|_{2,}|-{2,}|={2,}|\*{3,}|~{2,})\s*$")

_WORD = r"[\w.()\-®™'’&]+"
_APP = r"(?:Mail|Outlook|Yahoo|Samsung|Gmail|Proton\w*|BlueMail|AOL|Huawei|Xiaomi|iPhone|iPad|TypeApp|Android|[A-Z]\w+)"
_MOBILE = re.compile(
    rf"""(?ix)(?:
        Sent\ (?:with\ |using\ |wirelessly\ )?from\ (?:my\ {_WORD}|{_APP})(?:\ {_WORD}){{0,6}}
      | Sent\ (?:with|using|via)\ (?:the\ )?{_APP}(?:\ {_WORD}){{0,6}}
      | Skickat\ från\ (?:min\ )?{_WORD}(?:\ {_WORD}){{0,3}}
      | Sendt\ fra\ (?:min\ )?{_WORD}(?:\ {_WORD}){{0,3}}
      | Trimis\ de\ pe\ {_WORD}(?:\ {_WORD}){{0,3}}
      | Von\ meinem\ {_WORD}(?:\ {_WORD}){{0,2}}\ gesendet
      | Gesendet\ (?:von|mit)\ (?:meinem\ )?{_WORD}(?:\ {_WORD}){{0,3}}
      | Envoyé\ (?:sans\ fil\ )?(?:de|depuis|par|à\ partir\ de)\ (?:mon\ )?{_WORD}(?:\ {_WORD}){{0,8}}
      | Enviado\ (?:desde|de|do)\ (?:mi\ |meu\ |o\ meu\ )?{_WORD}(?:\ {_WORD}){{0,6}}
      | Inviato\ da\ {_WORD}(?:\ {_WORD}){{0,3}}
      | (?:Verzonden|Verstuurd)\ (?:vanaf|met|van)\ (?:mijn\ )?{_WORD}(?:\ {_WORD}){{0,3}}
      | Wysłane\ z\ {_WORD}(?:\ {_WORD}){{0,6}}
      | Odesláno\ z\ {_WORD}(?:\ {_WORD}){{0,3}}
      | {_WORD}-r[óo]l\ küldve
      | Lähetetty\ {_WORD}(?:\ {_WORD}){{0,3}}
      | Отправлено\ (?:с|из)\ {_WORD}(?:\ {_WORD}){{0,3}}
      | (?:Get|Hämta|Obțineți|Télécharger)\ Outlook\ (?:for|för|pentru|pour)\ (?:iOS|Android)
      | Outlook\ für\ (?:iOS|Android)\ beziehen
    )[.!]?(?:\s*<[^<>\s]{{1,200}}>|\s*\([^()\s]{{1,200}}\))?\s*$""",
)
_PHONE = re.compile(r"(?:\+|\(?\b0)[\d ()./-]{6,20}\d|\b\d{2,4}[ -]\d{2,4}[ -]\d{2,4}\b")
_PHONE_LABEL = re.compile(r"(?i)^\s*(?:tel|telefon|phone|mobil|mobile|mob|cell|fax|tfn|direkt|direct|växel|t|m|p|f)\b\.?\s*[:.]?")
_URL = re.compile(r"(?i)^\s*<?(?:https?://|www\.)\S+>?\s*$")
_EMAIL = re.compile(r"(?i)^\s*(?:e-?mail\s*:?\s*)?<?[\w.+-]+@[\w-]+(?:\.[\w-]+)+>?\s*$")
_POSTAL = re.compile(r"(?i)^\s*(?:[A-Z]{1,2}-)?\d{3}\s?\d{2}\s+\w+|^\s*\d{4,5}\s+\w+|\b\w+(?:gatan|vägen|straße|strasse|str\.|road|street|st\.|avenue|väg|gata|allé)\s+\d+")
_COMPANY = re.compile(r"(?i)\b(?:AB|GmbH|AG|Ltd|Limited|Inc|LLC|S\.?R\.?L|S\.?A|Oy|AS|A/S|ApS|B\.?V|N\.?V|SpA|Sp\. z o\.o\.|KG)\.?\s*$")
_NAME = re.compile(r"^[/–—-]?\s*\(?[A-ZÀ-ÞĀ-Ž][\w'’.-]+(?:\s+[A-ZÀ-ÞĀ-Ž][\w'’.-]*){0,3}\)?$")


def is_mobile_footer(line: str) -> bool:
    return len(line) <= 160 and bool(_MOBILE.match(line.strip()))


def signature_start(lines: list[str], end: int, sender_name: str = "") -> int:
    """Index where the signature begins among `lines[:end]` (`end` when there is none)."""
    while True:
        while end > 0 and not lines[end - 1].strip():
            end -= 1
        start = _trailing_signature(lines, end, sender_name)
        if start is None or start >= end:
            return end
        end = start


def _trailing_signature(lines: list[str], end: int, sender_name: str) -> int | None:
    if end == 0:
        return None
    last = lines[end - 1]
    if is_mobile_footer(last):
        return end - 1
    if _closing_dash_name(lines, end):
        return end - 1
    for finder in (_delimited, _signed_off, _contact_block, _named_contact):
        start = finder(lines, end, sender_name)
        if start is not None:
            return start
    # Last, so that "Thanks in advance," / "Bob" goes whole as a sign-off.
    return end - 1 if _senders_name_alone(lines, end, sender_name) else None


_LIST_ITEM = re.compile(r"^\s*(?:[-–—*•+]|\d{1,2}[.)])\s")


def _closing_dash_name(lines: list[str], end: int) -> bool:
    """The last line is a dashed name: "-Anna Svensson" after a blank line, or straight under the
    text ("Hey!" / "-roman", "- Lev.") where the line above is no list item and no lead-in to one."""
    last = lines[end - 1].strip()
    if (end == 1 or not lines[end - 2].strip()) and _is_dash_name(last):
        return True
    above = next((line.strip() for line in reversed(lines[:end - 1]) if line.strip()), "")
    if not above or _LIST_ITEM.match(above) or above.endswith(":") or above[:1] in "-–—*•":
        return False
    return _is_dash_name(last) or bool(_DASH_WORD.match(last))


# One word of a name in any case, as people sign quickly: "-roman", "- lev."
_DASH_WORD = re.compile(r"^[-–—]\s?[^\W\d_]{2,20}\.?$")


def _senders_name_alone(lines: list[str], end: int, sender_name: str) -> bool:
    """The last line is only the sender's name ("Bob", "Anna Svensson") under a line of text."""
    if not sender_name or end < 2 or not lines[end - 2].strip():
        return False
    return lines[end - 1].strip(" \t/–—-,.").lower() in _name_forms(sender_name)


def _is_dash_name(line: str) -> bool:
    """A sign-off like "-Abhishek Kona" or "– Anna Svensson", not a list item like "- fix it"."""
    if line.startswith("//"):  # Swedish mail often signs "//Anna"
        line = line[1:]
    if len(line) > 40 or line[:1] not in "-–—/" or line[1:2] in "-–—":
        return False
    words = line[1:].split()
    return 0 < len(words) <= 4 and all(word[0].isupper() for word in words)


def _delimited(lines: list[str], end: int, sender_name: str) -> int | None:
    """A delimiter line with at most a few lines of signature below it."""
    content = 0
    for index in range(end - 1, max(end - 3 * _MAX_LINES, 0) - 1, -1):
        line = lines[index]
        if line == "-- " or _DELIMITER.match(line.strip()):
            return index if index > 0 else None
        if line.lstrip().startswith(">"):
            return None
        if line.strip():
            content += 1
            if content > _MAX_LINES or len(line) > 200:
                return None
    return None


def _signed_off(lines: list[str], end: int, sender_name: str) -> int | None:
    """A sign-off line followed only by a few short lines (name, title, contact)."""
    below = 0
    for index in range(end - 1, max(end - _MAX_LINES, 0) - 1, -1):
        line = lines[index].strip()
        if not line:
            continue
        if len(line) <= 60 and _SIGN_OFF.match(line) and index > 0:
            return index if below or not _GRATITUDE.match(line) else None
        below += 1
        # A sentence under the sign-off (many words) is still the sender's message, not a card.
        if (len(line) > _SHORT or below > 6 or line.endswith("?") or line.startswith(">")
                or _is_prose(line)):
            return None
    return None


def _is_prose(line: str) -> bool:
    """A long line of many words without a phone number, address or link in it."""
    return (len(line) > 60 and len(line.split()) > _CARD_WORDS and not _PHONE.search(line)
            and "@" not in line and "://" not in line)


def _contact_block(lines: list[str], end: int, sender_name: str) -> int | None:
    """The last paragraph, when it is a business card: name, phones, addresses, URLs."""
    start = end
    while start > 0 and lines[start - 1].strip():
        start -= 1
    block = [line.strip() for line in lines[start:end]]
    if start == 0 or not 1 <= len(block) <= _CONTACT_BLOCK_LINES or any(len(line) > _SHORT for line in block):
        return None
    kinds = [_contact_kind(line, sender_name) for line in block]
    strong = sum(kind in ("phone", "url", "email", "postal", "company", "sender") for kind in kinds)
    unknown = kinds.count(None)
    # One line of its own ("Product Manager at Acme") is allowed in a card that is clearly one.
    if strong >= 2 and unknown <= (1 if len(block) >= 3 else 0):
        return start
    if unknown == 0 and strong == 1 and len(block) <= 2 and "sender" in kinds:
        return start
    return None


def _named_contact(lines: list[str], end: int, sender_name: str) -> int | None:
    """"-John Doe", a blank line, then an address or phone line or two: the name and its card."""
    start = end
    while start > 0 and lines[start - 1].strip():
        start -= 1
    block = [line.strip() for line in lines[start:end]]
    if not 1 <= len(block) <= 3 or not all(_contact_kind(line, sender_name) for line in block):
        return None
    above = start - 1
    while above > 0 and not lines[above].strip():
        above -= 1
    if above > 0 and _is_dash_name(lines[above].strip()) and not lines[above - 1].strip():
        return above
    return None


def _contact_kind(line: str, sender_name: str) -> str | None:
    if sender_name and line.strip("/-–— ,").lower() in _name_forms(sender_name):
        return "sender"
    if _URL.match(line):
        return "url"
    if _EMAIL.match(line):
        return "email"
    phone = _PHONE.search(line)
    if phone and (len(line) - len(phone.group(0)) <= 16 or _PHONE_LABEL.match(line)):
        return "phone"
    if _POSTAL.search(line) and len(line) <= 50:
        return "postal"
    if _COMPANY.search(line) and len(line) <= 60:
        return "company"
    if _NAME.match(line) and not line.endswith((".", "?", "!")):
        return "name"
    return None


def _name_forms(name: str) -> set[str]:
    words = name.replace(",", " ").split()
    forms = {" ".join(words).lower()}
    if words:
        forms.add(words[0].lower())
        forms.add(" ".join(reversed(words)).lower())
    return forms
