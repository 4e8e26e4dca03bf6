"""HTML quote containers: the earlier message and the signature as mail clients mark them in HTML.

Gmail's `gmail_quote`, Thunderbird's `moz-cite-prefix`, Yahoo's `yahoo_quoted`, Outlook's
`divRplyFwdMsg` and the rule above its header block, `<blockquote type="cite">`, signature
containers. `without_quote_containers` re-emits the HTML without them; the text rules of
`gateway.mail.quotes` then see only what the sender wrote.
"""

from __future__ import annotations

from html import escape
from html.parser import HTMLParser

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}
# Containers whose start means "everything from here on is the earlier message".
_CUT_IDS = {"divrplyfwdmsg", "mail-editor-reference-message-container", "olk_src_body_section", "appendonsend",
            "x_divrplyfwdmsg", "zwchr", "stopspelling"}  # Zimbra's and old Hotmail's rule above the quote
_OUTLOOK_RULES = ("border-top:solid#e1e1e1", "border-top:solid#b5c4df")
# Containers that are quoted history or a signature, removed with what they hold.
_SKIP_CLASSES = {"gmail_quote", "gmail_extra", "x_gmail_quote", "yahoo_quoted", "gmail_signature",
                 "x_gmail_signature", "moz-signature", "protonmail_quote", "protonmail_signature_block", "zmail_extra",
                 "ms-outlook-mobile-reference-message"}
_SKIP_IDS = {"signature", "applemailsignature", "x_signature"}
# Thunderbird's attribution container: its last line is the attribution, but a reply typed
# above the quote can land inside it, so only that line goes.
_PREFIX_CLASS = "moz-cite-prefix"
_BREAKS = ("<br", "<p", "</p", "<div", "</div")
# Substrings without which none of the containers above can be present.
_MARKERS = ("border-top", "cite", "signature", *_CUT_IDS, *_SKIP_CLASSES, _PREFIX_CLASS)


def without_quote_containers(html: str) -> str:
    lowered = html.lower()
    # Most bodies carry none of the markers; parsing them twice would only cost time.
    if not any(marker in lowered for marker in _MARKERS):
        return html
    pruner = _QuotePruner()
    pruner.feed(html)
    pruner.close()
    return pruner.result()


def _container(tag: str, attrs: list[tuple[str, str | None]]) -> str | None:
    """Whether a start tag opens a "cut" or a "skip" container (see above), or neither."""
    values = {name.lower(): (value or "") for name, value in attrs}
    element_id = values.get("id", "").strip().lower()
    style = "".join(values.get("style", "").split()).lower()
    if element_id in _CUT_IDS or (tag == "div" and any(r in style for r in _OUTLOOK_RULES)):
        return "cut"
    classes = set(values.get("class", "").lower().split())
    if classes & _SKIP_CLASSES or element_id in _SKIP_IDS:
        return "skip"
    if _PREFIX_CLASS in classes:
        return "prefix"
    if tag == "blockquote" and values.get("type", "").strip().lower() == "cite":
        return "skip"
    return None


class _QuotePruner(HTMLParser):
    """Re-emits HTML without quote containers, stopping at the first "cut" container.

    A skipped subtree ends at the end tag that balances its start tag of the same name;
    counting only that name keeps unclosed <p> and <li> inside it from confusing the count.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._out: list[str] = []
        self._skip_tag: str | None = None
        self._skip_depth = 0
        self._prefix_tag: str | None = None
        self._prefix_depth = 0
        self._prefix_start = 0
        self._done = False

    def result(self) -> str:
        return "".join(self._out)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._done:
            return
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth += 1
            return
        if tag == self._prefix_tag:
            self._prefix_depth += 1
        kind = _container(tag, attrs)
        if kind == "cut":
            self._cut()
        elif kind == "skip" and tag not in _VOID:
            self._skip_tag, self._skip_depth = tag, 1
        elif kind == "prefix" and self._prefix_tag is None and tag not in _VOID:
            self._prefix_tag, self._prefix_depth, self._prefix_start = tag, 1, len(self._out)
        elif kind is None:
            self._out.append(self.get_starttag_text() or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._done or self._skip_tag is not None:
            return
        kind = _container(tag, attrs)
        if kind == "cut":
            self._cut()
        elif kind is None:
            self._out.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        if self._done:
            return
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth -= 1
                if self._skip_depth == 0:
                    self._skip_tag = None
            return
        if tag == self._prefix_tag:
            self._prefix_depth -= 1
            if self._prefix_depth == 0:
                self._prefix_tag = None
                self._drop_attribution()
                return
        self._out.append(f"</{tag}>")

    def _drop_attribution(self) -> None:
        """Of the attribution container just closed, keep what stands above its last line."""
        out = self._out
        while len(out) > self._prefix_start and (not out[-1].strip() or out[-1].lower().startswith(_BREAKS)):
            out.pop()
        while len(out) > self._prefix_start and not out[-1].lower().startswith(_BREAKS):
            out.pop()

    def handle_data(self, data: str) -> None:
        if not self._done and self._skip_tag is None:
            self._out.append(escape(data, quote=False))

    def _cut(self) -> None:
        # Outlook draws a rule just above its header block; it belongs to the history.
        while self._out and (not self._out[-1].strip() or self._out[-1][:3].lower() == "<hr"):
            self._out.pop()
        self._done = True
