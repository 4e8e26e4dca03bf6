"""HTML bodies as readable plain text, and as a safe subset of HTML for display.

Owns the two ways the gateway looks at an HTML part: `html_to_text` (html2text with its
Markdown decoration turned off, so that a ticket shows what the customer saw, not Markdown
source) and `sanitize_html` (an nh3 allow-list, so that an agent's browser never runs what a
sender put in a message). Which parts of the HTML are quoted history is not decided here; see
`gateway.mail.quotes`.

Both run on HTML from strangers, and both parsers (html5ever inside nh3, and the stdlib
HTMLParser under html2text) get slower with every level of open elements, quadratically so for
nh3. `flatten_nesting` is one linear pass that drops tags nested deeper than a limit (their text
stays), and `plain_extract` reads text out of HTML too large to parse at all; `gateway.mail.limits`
decides when each is used.
"""

from __future__ import annotations

import html as htmllib
import re

import html2text
import nh3

# html2text glues table cells together ("AB"); a space before each cell end keeps words apart
# now that tables are flattened rather than drawn as Markdown pipes.
_CELL_END = re.compile(r"(</t[dh]\s*>)", re.IGNORECASE)
_PRE_TAG = re.compile(r"<(/?)pre\b[^>]*>", re.IGNORECASE)
_LEADING_SPACES = re.compile(r"^[ \t]+", re.MULTILINE)
# html2text writes links as [text](url "title"); the url has its brackets backslash-escaped.
_MD_LINK = re.compile(r'\[([^\[\]\n]*)\]\(((?:\\.|[^\s()\\])*)(?:\s+"[^"\n]*")?\)')
_MD_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^\s<>]+)>", re.IGNORECASE)
_MD_ESCAPE = re.compile(r"\\(.)")
_MD_HEADING = re.compile(r"^#{1,6} ", re.MULTILINE)
_MD_RULE = re.compile(r"^ *\* \* \*$", re.MULTILINE)
_BLANK_RUNS = re.compile(r"\n{3,}")
_TEXT_LINK_SCHEMES = ("http:", "https:", "ftp:")
# Any tag, comment or doctype; the tag name in group 2, "/" in group 1 for an end tag and at
# the end of group 3 for a self-closing one. No nested quantifiers: one linear scan. A ">" inside
# a quoted attribute ends the match early; the rest reads as text, which the sanitiser escapes.
_ANY_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)([^<>]*)>|<!--.*?-->|<![^<>]*>", re.S)
# Elements without content, and those a parser closes by itself when the next one starts (a
# run of unclosed <p> or <li> is as flat as closed ones): neither adds a level.
_NO_LEVEL = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup",
}
_BLOCK_BREAK = re.compile(r"<(?:br|/?p|/?div|/?li|/?tr|/?h[1-6]|/?blockquote|/?table)\b[^>]*>", re.I)
_SPACE_RUNS = re.compile(r"[^\S\n]+")
_SPACED_NEWLINE = re.compile(r" ?\n ?")
_DROPPED_BLOCK = re.compile(r"<(script|style|head|title)\b[^>]*>.*?</\1\s*>", re.I | re.S)

_SAFE_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "div", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li", "ol", "p", "pre",
    "q", "s", "small", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "u", "ul",
}
# Removed together with their content: showing the text of a <style> or <title> is noise,
# and the text of a <script> is worse.
_DROP_WITH_CONTENT = {
    "script", "style", "title", "noscript", "template", "iframe", "object", "embed", "svg",
    "math", "xml", "head",
}
_SAFE_ATTRIBUTES = {
    "*": {"dir", "lang", "title"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "ol": {"start"},
}
# Images may only come from the message itself (cid:) or over TLS; anything else, including
# relative URLs that a browser would resolve against the helpdesk's own origin, is dropped.
_URL_SCHEMES = {"href": ("http:", "https:", "mailto:"), "src": ("https:", "cid:")}


class _PlainText(html2text.HTML2Text):
    """html2text configured for people rather than for Markdown renderers."""

    def __init__(self) -> None:
        super().__init__()
        self.body_width = 0
        self.unicode_snob = True
        self.ignore_emphasis = True
        self.ignore_images = True
        self.ignore_tables = True
        self.ul_item_mark = "-"

    def handle_data(self, data: str, entity_char: bool = False) -> None:
        # html2text escapes Markdown characters ("1\.", "\-", "\+") in text; entity_char=True
        # is its own way of saying "write this as it is", which is what a reader wants.
        super().handle_data(data, entity_char=True)


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML body: paragraphs kept, links as "text (url)"."""
    converter = _PlainText()
    text = converter.handle(_CELL_END.sub(r" \1", _pre_as_lines(html)))
    text = text.replace("\xa0", " ")
    text = _MD_LINK.sub(_link_as_text, text)
    text = _MD_AUTOLINK.sub(r"\1", text)
    text = _MD_HEADING.sub("", text)
    text = _MD_RULE.sub("", text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip()


def _pre_as_lines(html: str) -> str:
    """Turn each <pre> into lines of a <div>: html2text would indent it as a Markdown code block."""
    pieces: list[str] = []
    done = 0
    opened: re.Match[str] | None = None
    # Tags are paired in one pass over their positions, so unclosed <pre>s cost nothing extra.
    for tag in _PRE_TAG.finditer(html):
        if not tag.group(1):
            opened = opened or tag
        elif opened is not None:
            body = html[opened.end() : tag.start()].replace("\r\n", "\n")
            body = _LEADING_SPACES.sub(lambda m: "&nbsp;" * len(m.group(0).expandtabs(4)), body)
            pieces += [html[done : opened.start()], "<div>", body.replace("\n", "<br>\n"), "</div>"]
            done, opened = tag.end(), None
    pieces.append(html[done:])
    return "".join(pieces)


def _link_as_text(match: re.Match[str]) -> str:
    label = match.group(1).strip()
    url = _MD_ESCAPE.sub(r"\1", match.group(2))
    if url.lower().startswith("mailto:"):
        address = url[len("mailto:"):].split("?", 1)[0]
        return address if not label or label == address else f"{label} ({address})"
    # Relative and javascript: targets mean nothing outside the sender's page.
    if not url.lower().startswith(_TEXT_LINK_SCHEMES):
        return label
    if not label or _same_url(label, url):
        return url
    return f"{label} ({url})"


def _same_url(label: str, url: str) -> bool:
    bare = url.split("://", 1)[-1].rstrip("/")
    return label.rstrip("/") in (url.rstrip("/"), bare)


def flatten_nesting(html: str, max_depth: int) -> tuple[str, int]:
    """`html` without the tags nested deeper than `max_depth`, and the deepest level it had.

    The text inside dropped tags stays where it was; only the markup of levels a reader could
    not tell apart anyway is lost. An end tag without a start tag lowers nothing below zero.
    """
    pieces: list[str] = []
    done = depth = deepest = 0
    for tag in _ANY_TAG.finditer(html):
        closing, name, attributes = tag.groups()
        if name is None or attributes.endswith("/") or name.lower() in _NO_LEVEL:
            continue
        if closing:
            level = depth
            depth -= depth > 0
        else:
            depth += 1
            level = depth
            if depth > deepest:
                deepest = depth
        if level > max_depth:
            start, end = tag.span()
            pieces.append(html[done:start])
            done = end
    if not pieces:
        return html, deepest
    pieces.append(html[done:])
    return "".join(pieces), deepest


def plain_extract(html: str) -> str:
    """Text of HTML too large to parse: tags removed in linear passes, line breaks kept."""
    text = _DROPPED_BLOCK.sub(" ", html)
    text = _BLOCK_BREAK.sub("\n", text)
    text = _ANY_TAG.sub("", text)
    text = _SPACE_RUNS.sub(" ", htmllib.unescape(text).replace("\xa0", " "))
    text = _SPACED_NEWLINE.sub("\n", text)
    return _BLANK_RUNS.sub("\n\n", text).strip()


def sanitize_html(html: str) -> str:
    """A display-safe subset of `html`: formatting, links and cid:/https: images only."""
    return nh3.clean(
        html,
        tags=_SAFE_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes=_SAFE_ATTRIBUTES,
        attribute_filter=_filter_attribute,
        url_schemes={"http", "https", "mailto", "cid"},
        strip_comments=True,
        link_rel="noopener noreferrer nofollow",
    )


def display_html(html: str, sanitised: bool, max_depth: int = 100) -> str:
    """Stored HTML ready to show: as it is when it was sanitised on the way in, else cleaned now.

    Mail is sanitised once, when it is processed (`message.html_sanitised`); rows from before
    that mark existed are cleaned here, flattened first so that no stored row can cost more
    than a linear pass.
    """
    if sanitised or not html:
        return html
    return sanitize_html(flatten_nesting(html, max_depth)[0])


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    schemes = _URL_SCHEMES.get(attribute)
    if schemes is None:
        return value
    # Browsers ignore leading whitespace and control characters in URLs ("  java\tscript:"),
    # so the scheme is judged on the value as a browser would read it.
    compact = "".join(ch for ch in value if ch > " ").lower()
    return value.strip() if compact.startswith(schemes) else None
