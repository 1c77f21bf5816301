"""Storage URLs: a password is never written or printed (:func:`redact`,
:func:`use_password`), and a SQLite run keeps its database path relative to the run, so
the run folder can move (:func:`portable_storage`, :func:`connect_url`)."""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

__all__ = ["connect_url", "portable_storage", "redact", "url_password", "use_password"]


def redact(url: str) -> str:
    """``url`` without its password (``postgresql://nas:secret@db/nas`` becomes
    ``postgresql://nas@db/nas``): what ``run.json`` keeps and what is ever printed. The
    database driver finds the password at run time in ``PGPASSWORD`` or ``~/.pgpass``
    (libpq's own rules), or in a URL given again with ``--storage``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # not a URL urllib can split: drop anything between "://" and "@"
        scheme, sep, rest = url.partition("://")
        userinfo, at, host = rest.rpartition("@")
        return f"{scheme}{sep}{userinfo.partition(':')[0]}{at}{host}" if at else url
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]  # as written (percent-encoded), without the password
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


def use_password(url: str | None) -> None:
    """Hand the password of a storage URL given on the command line to libpq
    (``PGPASSWORD``) for this process and the processes it starts (the final training),
    so the password-free URL of ``run.json`` opens the database; a URL without one
    changes nothing."""
    secret = url_password(url) if url else None
    if secret:
        os.environ["PGPASSWORD"] = secret


def url_password(url: str) -> str | None:
    """The password in ``url``, or None."""
    try:
        return urllib.parse.urlsplit(url).password
    except ValueError:
        return None


def portable_storage(url: str, run_dir: Path) -> str:
    """The storage as ``run.json`` keeps it: no password (:func:`redact`), and a SQLite
    file inside the run folder as a path relative to it (``sqlite:///study.db``), so the
    folder can be moved or copied; any other SQLite file as an absolute path."""
    url = redact(url)
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    path = Path(url[len(prefix) :]).expanduser().resolve()
    try:
        return prefix + str(path.relative_to(run_dir.resolve()))
    except ValueError:
        return prefix + str(path)


def connect_url(stored: str, run_dir: Path) -> str:
    """The URL to open a stored storage with: a relative SQLite path (see
    :func:`portable_storage`) is the run folder's own file, wherever the folder is now."""
    prefix = "sqlite:///"
    if not stored.startswith(prefix):
        return stored
    path = Path(stored[len(prefix) :])
    if not path.is_absolute():
        return prefix + str((run_dir / path).resolve())
    if not path.exists() and (run_dir / path.name).exists():  # a run from before, moved
        return prefix + str((run_dir / path.name).resolve())
    return stored
