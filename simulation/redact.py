"""Keep a fork URL out of everything the tool prints or writes.

A fork URL usually carries an API key (in its path, query or user info), and anvil 1.7 repeats the
upstream URL, normalised, in the errors it answers with when a fetch fails. Every message the tool
shows and every error answer it records goes through `redact`, which removes the URL and its secret
parts in any letter case once `register` has been told about it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

MARK = "<fork-url>"
_patterns: list[re.Pattern[str]] = []
_known: set[str] = set()


def register(url: str) -> None:
    """Redact `url` (and its path, query and user info) from now on, in this process."""
    if url in _known:
        return
    _known.add(url)
    parts = {url, url.rstrip("/")}
    try:
        u = urlsplit(url)
        parts |= {p for p in (u.path, u.query, u.fragment) if len(p) > 1}
        # a key on its own, as some errors quote it: long path segments and query values
        parts |= {seg for seg in u.path.split("/") if len(seg) >= 8}
        parts |= {v for _, v in parse_qsl(u.query) if len(v) >= 8}
        if "@" in u.netloc:
            parts.add(u.netloc.rsplit("@", 1)[0])
    except ValueError:
        pass
    for p in sorted(parts, key=len, reverse=True):
        if p.strip("/"):
            _patterns.append(re.compile(re.escape(p), re.IGNORECASE))


def redact(text: str) -> str:
    for p in _patterns:
        text = p.sub(MARK, text)
    return text
