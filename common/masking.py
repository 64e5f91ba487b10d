"""Addresses with their secrets hidden, for logs and summaries an operator may share.

``postgresql+asyncpg://evpark:s3cret@db/parking`` reads
``postgresql+asyncpg://evpark:***@db/parking``; a query parameter that carries a secret
(``password``, ``token``, ...) is hidden too. The one place that decides what is shown, so no log line shows more than another.
"""

from __future__ import annotations

from typing import Final

MASK: Final = "***"
SECRET_PARAMETERS: Final = frozenset(
    {"password", "passwd", "pass", "token", "secret", "key", "sslpassword", "auth"}
)

# schemes whose user part alone is a secret (NATS: ``nats://<token>@host``)
TOKEN_AS_USER: Final = frozenset({"nats", "tls"})


def mask_url(url: str) -> str:
    """``url`` with its password (and secret query parameters) replaced by ``***``; the
    scheme, user name, host, port, path and other parameters stay as they were written."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, hostport = authority.rpartition("@")
    if at and ":" in userinfo:
        authority = f"{userinfo.partition(':')[0]}:{MASK}@{hostport}"
    elif at and scheme.lower() in TOKEN_AS_USER:
        authority = f"{MASK}@{hostport}"
    path, question, query = tail.partition("?")
    if question:
        query, hash_, fragment = query.partition("#")
        pairs = [pair.partition("=") for pair in query.split("&")]
        query = "&".join(
            f"{k}{eq}{MASK if eq and k.lower() in SECRET_PARAMETERS else v}" for k, eq, v in pairs
        )
        tail = f"{path}?{query}{hash_}{fragment}"
    return f"{scheme}://{authority}{tail}"
