"""How mail clients introduce the message they quote, in the languages our customers write.

Two shapes: an attribution line ("On … wrote:", "Den … skrev:", "La … a scris:", "Am … schrieb
…:", "W dniu … napisał(a):", "… kirjoitti:", "… написал:", "… írta:", and forms without a verb
such as `26.06.2014, 14:41, "Name" <addr>:`), and a header block as Outlook writes it (From,
Sent/Date, To, Subject, in any order and language, possibly after an "Original Message"
rule). Every pattern sees one line, or a few joined lines, of bounded length.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Verbs of attribution lines: en, sv/da/no, ro, de, fr, es, it, nl, pt, pl, fi, ru, hu, cs
# (zh, ja and ko, and verbs that open the line, in `_CJK_VERB` and `_OPENING_VERB`).
_VERBS = (r"wrote|writes|said|skrev|skriver|a scris|scrie|schrieb|schreibt|a écrit|a ecrit|écrit|escribió|escribio"
          r"|ha scritto|scrisse|schreef|escreveu|napisał\(a\)|napisał|napisała|napisal|kirjoitti|написал\(а\)"
          r"|написал|написала|пишет|írta|napsal|napsala")
_VERB = re.compile(rf"(?:^|[\s,])(?:{_VERBS})(?=$|[\s:,.-])", re.IGNORECASE)
# Words that open an attribution ("On", "Den", "Am", "Le", "El", "Il", "Op", "Em", "W dniu", …).
_LEAD = re.compile(r"(?i)(?:-{2,}\s*)?(?:(?:On|Den|Am|La|Le|El|Il|Op|Em|W dniu|Dne)\b|\d|\w{2,3}\.?,?\s+\d)")
# What makes a line an attribution rather than prose: a date, a time or an address.
_DATE = re.compile(r"\d{1,2}[:.]\d{2}|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\b(?:19|20)\d{2}\b")
_ADDRESS = re.compile(r"[^\s<>()\[\]]+@[^\s<>()\[\]]+\.[A-Za-z]{2,}|<[^<>\s]+@[^<>\s]+>")
_END = re.compile(r"(?:[:>)]\s*|\s-{2,})$")
# Scripts that write no space before the verb: Chinese Gmail's "… 10:20写道：", Japanese
# Apple Mail's "…のメール:", Korean "…님이 작성:". They need a date or an address too.
_CJK_VERB = re.compile(r"(?:写道|寫道|のメール|님이 작성)\s*:$")
# A verb that opens the line instead of closing it: Horde, SquirrelMail, Roundcube's
# "Quoting Name <addr>:", "Zitat von …:", "Citando …:".
_OPENING_VERB = re.compile(r"(?i)^(?:quoting|zitat von|citando a?|citation de|citerar|cytuję)\s")
# A verb closing the line (after it at most "," or "."): the one way an attribution may end
# other than in ":", ">", ")" or a "--" rule.
# The verbs as plain lower-case text, for the test of a line's end in `is_attribution`: one
# `str.endswith` over them costs a tenth of a search of the verb pattern over the line's tail.
_VERB_ENDINGS = tuple(verb.replace("\\(", "(").replace("\\)", ")").lower() for verb in _VERBS.split("|"))
_TAIL = 24  # characters: more than the longest verb and its mark
_MAX_CHARS = 500
MAX_LINES = 3

# Header block field names, by what they say.
_FIELDS = {
    "from": r"From|Från|Fra|Von|De|De la|Van|Da|Od|Lähettäjä|От|Feladó|Expeditor|Remitente|Afzender|Mittente|Absender",
    "date": r"Sent|Date|Datum|Dato|Data|Gesendet|Skickat|Sendt|Envoyé|Envoyé le|Enviado|Enviada|Inviato|Verzonden"
            r"|Wysłano|Wysłany|Lähetetty|Päivämäärä|Отправлено|Дата|Küldve|Dátum|Trimis|Fecha|Odesláno",
    "to": r"To|Till|Til|An|À|A|Aan|Para|Do|Vastaanottaja|Кому|Címzett|Către|Catre|Komu|Destinatario|Destinataire",
    "subject": r"Subject|Ämne|Emne|Betreff|Objet|Onderwerp|Oggetto|Asunto|Assunto|Temat|Aihe|Тема|Tárgy|Subiect"
               r"|Předmět|Sujet",
    "cc": r"Cc|Kopia|Kopie|Kopio|Копия|Másolat",
}
_FIELD = {kind: re.compile(rf"(?i)^\s*[*>]{{0,2}}\s*(?:{names})\s*\*{{0,2}}\s*:\s*\S?") for kind, names in _FIELDS.items()}
_STARTERS = ("from", "date", "to", "subject")
# Fields run together on one line, as some clients flatten the block: "From: … Sent: … To: …".
_INLINE_FIELD = re.compile(rf"(?i)(?:^|\s|\*)(?:{_FIELDS['date']}|{_FIELDS['to']}|{_FIELDS['subject']})\s*\*{{0,2}}\s*:\s")
HEADER_WINDOW = 10
ORIGINAL_MESSAGE = re.compile(
    r"(?i)^[-_=\s]*(?:original message|ursprüngliche nachricht|ursprungligt meddelande|originalmeddelande"
    r"|mesaj original|mesajul original|message d'origine|message original|mensaje original|messaggio originale"
    r"|oorspronkelijk bericht|origineel bericht|mensagem original|wiadomość oryginalna|oryginalna wiadomość"
    r"|oprindelig besked|oprindelig meddelelse|opprinnelig melding|alkuperäinen viesti|исходное сообщение"
    r"|eredeti üzenet|původní zpráva)[-_=\s]*$"
)
FORWARD = re.compile(
    r"(?i)-{2,}\s*(?:forwarded message|vidarebefordrat meddelande|mesaj redirecționat|weitergeleitete nachricht"
    r"|message transféré|mensaje reenviado|messaggio inoltrato|doorgestuurd bericht|mensagem encaminhada"
    r"|videresendt meddelelse|videresendt melding|välitetty viesti|wiadomość przekazana)\s*-{2,}"
    r"|^begin forwarded message:|^inizio messaggio inoltrato:|^début du message réexpédié"
)


def is_attribution(text: str, *, strict: bool) -> bool:
    """Does `text` (one or a few joined lines) introduce a quoted message?

    Strict means: without a `>` quote after it to vouch for it, so it must carry a date or an
    address as well as read like one.
    """
    text = text.strip()
    if len(text) > _MAX_CHARS or not text:
        return False
    # Most lines are prose ending otherwise: settled here, before the four patterns below, for
    # every line of every reply (and each line again joined with the next ones).
    if not _can_end(text):
        return False
    if text[-1] == "：":  # the full-width colon of Chinese and Japanese
        text = text[:-1] + ":"
    return _reads_as_attribution(text, strict=strict)


def _ends_with_verb(text: str) -> bool:
    """Whether `text` ends in a verb of attribution, perhaps with a comma or full stop after it."""
    tail = text[-_TAIL:].lower()
    return tail.endswith(_VERB_ENDINGS) or (tail[-1:] in (",", ".") and tail[:-1].endswith(_VERB_ENDINGS))


def _reads_as_attribution(text: str, *, strict: bool) -> bool:
    """`is_attribution` on stripped text of at most _MAX_CHARS, without the test of its end."""
    verb = _VERB.search(text)
    dated = bool(_DATE.search(text))
    addressed = bool(_ADDRESS.search(text))
    ends = bool(_END.search(text)) or (verb is not None and verb.end() >= len(text) - 1)
    if verb is not None and ends:
        # "I wrote this to you:" has a verb too: the line must also open like an attribution
        # or name someone's address.
        opens = _LEAD.match(text) is not None or addressed
        return opens and (dated or addressed) if strict else opens or verb.start() >= 2
    if text.endswith(":") and (_CJK_VERB.search(text) or _OPENING_VERB.match(text)):
        return addressed or dated and not strict
    # Without a verb: `26.06.2014, 14:41, "Name" <addr>:` or "… 3:32 PM from a@b.c <a@b.c>:".
    return text.endswith(":") and dated and addressed and len(text) <= 300


def _can_end(text: str) -> bool:
    """Whether `text` (stripped, not empty) ends as an attribution may: in ":>)-" or a verb."""
    return text[-1] in ":>)-：" or _ends_with_verb(text)


# `_can_end` of one line, which up to three windows in two passes ask: answered once.
_may_end = lru_cache(maxsize=4096)(_can_end)


def attribution_length(lines: list[str], start: int, *, strict: bool) -> int:
    """How many lines from `start` form an attribution (it may be wrapped), 0 if none."""
    parts: list[str] = []
    opens: bool | None = None
    for line in lines[start:start + MAX_LINES]:
        stripped = line.strip()
        if not stripped or stripped.startswith(">") or len(line) > _MAX_CHARS:
            return 0
        parts.append(stripped)
        # Only a line that can end one is worth the joining and the patterns: most lines of
        # most replies end otherwise, and this runs from every line of the reply.
        if not _may_end(stripped):
            continue
        if len(parts) > 1:
            # A wrapped attribution must open like one, or any paragraph ending in one would match.
            if opens is None:
                opens = _LEAD.match(parts[0]) is not None or _ADDRESS.search(parts[0]) is not None
            if not opens:
                return 0
        if is_attribution(" ".join(parts), strict=strict):
            return len(parts)
    return 0


def field_kind(line: str) -> str | None:
    """Which header-block field a line starts with ("from", "date", "to", "subject", "cc")."""
    if len(line) > 1000 or ":" not in line[:40]:
        return None
    for kind, pattern in _FIELD.items():
        if pattern.match(line):
            return kind
    return None


def header_block_length(lines: list[str], start: int) -> int:
    """Lines of an Outlook-style header block starting at `start`, or 0 when there is none.

    The block opens with From, Date/Sent, To or Subject (in any of the languages) and holds
    at least two different fields among those; wrapped lines between fields belong to it.
    """
    first = field_kind(lines[start])
    if first not in _STARTERS:
        return 0
    if first == "from" and len(_INLINE_FIELD.findall(lines[start][:2000])) >= 2:
        return 1
    kinds = {first}
    end = start + 1
    for index in range(start + 1, min(start + HEADER_WINDOW, len(lines))):
        line = lines[index]
        if not line.strip():
            # One blank line between two fields is the same block: clients that write each
            # field in a block of its own (Windows Live Mail) come out of HTML that way.
            if index + 1 < len(lines) and field_kind(lines[index + 1]) is not None and end == index:
                continue
            break
        kind = field_kind(line)
        if kind is not None:
            kinds.add(kind)
            end = index + 1
    # "From: the login page / To: the dashboard" is prose: a block has three fields, or a
    # sender or subject together with a date.
    enough = len(kinds) >= 3 or "date" in kinds and len(kinds) >= 2
    return end - start if enough else 0


def is_original_message(line: str) -> bool:
    """"-----Original Message-----" and its kin: a rule of dashes around the words."""
    stripped = line.strip()
    return len(stripped) <= 200 and stripped.count("-") + stripped.count("=") >= 4 \
        and bool(ORIGINAL_MESSAGE.match(stripped))


def is_forward(line: str) -> bool:
    return len(line) <= 200 and bool(FORWARD.search(line.strip()))
