"""Where Rasa keeps conversations and their locks, as the variables ``bot/endpoints.yml`` reads.

- Tracker store (``ASSISTANT_TRACKER_URL``): empty = the SQLite file of ``ASSISTANT_TRACKER_DIALECT`` /
  ``ASSISTANT_TRACKER_DB`` (the zero-setup default); otherwise a full SQLAlchemy URL such as
  ``postgresql://user:password@host:5432/rasa``, which Rasa's SQL tracker store uses as it is.
- Lock store (``ASSISTANT_LOCK_STORE`` …): ``in_memory`` for one Rasa process; Redis when
  ``ASSISTANT_REDIS_URL`` is set (``bot.lock_store.AtomicRedisLockStore``), so several Rasa replicas never
  process one conversation at the same time.

The values hold passwords: they reach Rasa by environment only (never argv, never a file).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from pydantic import SecretStr


# Rasa's RedisLockStore with atomic ticket updates (Rasa's own races between replicas: bot/lock_store.py).
REDIS_LOCK_STORE = "bot.lock_store.AtomicRedisLockStore"


def _secret(value: SecretStr | str | None) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value or ""


def redis_parts(url: str) -> dict[str, str]:
    """host, port, db and password of a ``redis://[:password@]host[:port][/db]`` URL."""
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise ValueError("ASSISTANT_REDIS_URL must look like redis://:password@host:6379/0")
    db = parts.path.strip("/") or "0"
    if not db.isdigit():
        raise ValueError("ASSISTANT_REDIS_URL: the database (after the last /) must be a number")
    return {"host": parts.hostname, "port": str(parts.port or 6379), "db": db,
            "password": unquote(parts.password or "")}


def store_env(tracker_url: SecretStr | str | None, redis_url: SecretStr | str | None) -> dict[str, str]:
    """The tracker and lock store variables of bot/endpoints.yml (all of them, always: Rasa refuses
    a ${VARIABLE} that is not set)."""
    env = {"ASSISTANT_TRACKER_URL": _secret(tracker_url), "ASSISTANT_LOCK_STORE": "in_memory",
           "ASSISTANT_LOCK_STORE_HOST": "", "ASSISTANT_LOCK_STORE_PORT": "", "ASSISTANT_LOCK_STORE_DB": "",
           "ASSISTANT_LOCK_STORE_PASSWORD": ""}
    url = _secret(redis_url)
    if url:
        parts = redis_parts(url)
        env.update({"ASSISTANT_LOCK_STORE": REDIS_LOCK_STORE, "ASSISTANT_LOCK_STORE_HOST": parts["host"],
                    "ASSISTANT_LOCK_STORE_PORT": parts["port"], "ASSISTANT_LOCK_STORE_DB": parts["db"],
                    "ASSISTANT_LOCK_STORE_PASSWORD": parts["password"]})
    return env


def describe_url(url: SecretStr | str | None) -> str:
    """A database or Redis URL for messages: the password masked."""
    text = _secret(url)
    parts = urlsplit(text)
    if parts.password is None:
        return text
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{netloc}").geturl()
