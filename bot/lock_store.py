"""Rasa's Redis lock store with atomic updates, for several Rasa replicas sharing conversations.

Rasa 3.6's ``RedisLockStore`` changes a conversation's ticket lock by read-modify-write (GET, change,
SET) without a transaction. When two replicas receive messages of one conversation at the same moment,
both read "no tickets", both issue ticket 0 and both save: each believes it holds the lock, and both
load, change and save the conversation at once, so one turn's events are lost from the tracker
(tests/test_cluster.py caught this). The same race lets one replica's cleanup delete the lock another
replica has just queued on.

Here every change of a lock runs as an optimistic Redis transaction (WATCH the key, read, MULTI/SET or
DEL, EXEC, and again if another replica changed the key in between), so tickets are numbered once and
never lost. The wire format stays Rasa's own.

A replica that dies (kill -9, a crashed machine) while it holds a conversation's lock cannot release it.
Rasa's tickets live 60 s, so that conversation would wait a minute on every other replica. Here a
ticket lives ``ticket_lifetime`` seconds (20 by default) and its holder extends it every third of that
while it waits or works: a live replica keeps its turn however long the turn takes, a dead one's
ticket lapses within ``ticket_lifetime`` seconds and the next turn goes ahead. Select it in endpoints.yml with
``lock_store: type: bot.lock_store.AtomicRedisLockStore`` (service/rasa_stores.py does when
ASSISTANT_REDIS_URL is set).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager
from typing import AsyncGenerator, Callable, Optional, Text, Tuple, TypeVar

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)
T = TypeVar("T")
# (the lock to save, or None to delete the key; the caller's result)
Change = Callable[[Optional[TicketLock]], Tuple[Optional[TicketLock], T]]


class AtomicRedisLockStore(RedisLockStore):
    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, ticket_lifetime: float = 20.0,
                 **kwargs) -> None:
        # Rasa builds a lock store named by module path from its endpoints.yml entry (url, port, db, password).
        if endpoint_config is not None:
            kwargs = {"host": endpoint_config.url, **endpoint_config.kwargs, **kwargs}
            ticket_lifetime = kwargs.pop("ticket_lifetime", ticket_lifetime)
        self.ticket_lifetime = float(ticket_lifetime)
        if not 1 <= self.ticket_lifetime <= 3600:
            raise ValueError("ticket_lifetime must be between 1 and 3600 seconds")
        super().__init__(**kwargs)

    @asynccontextmanager
    async def lock(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME,
                   wait_time_in_seconds: float = 1) -> AsyncGenerator[TicketLock, None]:
        """Rasa's lock (wait for this conversation's earlier tickets), with a short ticket kept alive by
        this replica while it waits and works (``lock_lifetime`` is replaced by ``ticket_lifetime``)."""
        ticket = self.issue_ticket(conversation_id, self.ticket_lifetime)
        heartbeat = asyncio.ensure_future(self._keep_alive(conversation_id, ticket))
        try:
            yield await self._acquire_lock(conversation_id, ticket, wait_time_in_seconds)
        finally:
            heartbeat.cancel()
            self.cleanup(conversation_id, ticket)

    async def _keep_alive(self, conversation_id: Text, ticket: int) -> None:
        while True:
            await asyncio.sleep(self.ticket_lifetime / 3)
            try:
                self.extend_ticket(conversation_id, ticket)
            except Exception as e:  # Redis unreachable for a moment: try again at the next beat
                logger.warning("could not extend the lock ticket of %s: %s", conversation_id, e)

    def extend_ticket(self, conversation_id: Text, ticket_number: int) -> None:
        """Push this ticket's expiry ``ticket_lifetime`` seconds ahead (if it still exists)."""
        def change(lock: Optional[TicketLock]):
            for t in lock.tickets if lock else ():
                if t.number == ticket_number:
                    t.expires = time.time() + self.ticket_lifetime
            return lock, None

        self._transact(conversation_id, change)

    def _transact(self, conversation_id: Text, change: Change) -> T:
        import redis

        key = self.key_prefix + conversation_id
        with self.red.pipeline() as pipe:
            for _ in range(1000):
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    lock = TicketLock.from_dict(json.loads(raw)) if raw else None
                    new, result = change(lock)
                    pipe.multi()
                    if new is None:
                        pipe.delete(key)
                    else:
                        pipe.set(key, new.dumps())
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue  # another replica changed the lock meanwhile: read it again
        raise LockError(f"could not update the lock of conversation {conversation_id!r}: too much contention")

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def change(lock: Optional[TicketLock]):
            lock = lock or self.create_lock(conversation_id)
            return lock, lock.issue_ticket(lock_lifetime)

        try:
            return self._transact(conversation_id, change)
        except LockError:
            raise
        except Exception as e:  # as Rasa's own: any Redis failure is a LockError
            raise LockError(f"Error while acquiring lock. Error:\n{e}")

    def update_lock(self, conversation_id: Text) -> None:
        def change(lock: Optional[TicketLock]):
            if lock:
                lock.remove_expired_tickets()
            return lock, None

        self._transact(conversation_id, change)

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        def change(lock: Optional[TicketLock]):
            if lock:
                lock.remove_ticket_for(ticket_number)
            return lock, None

        self._transact(conversation_id, change)

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        """Remove this ticket, and the lock when no one else is waiting: in one step, so a ticket another
        replica issues meanwhile is never deleted with it."""
        def change(lock: Optional[TicketLock]):
            if lock:
                lock.remove_ticket_for(ticket_number)
                if lock.is_someone_waiting():
                    return lock, None
            return None, None

        self._transact(conversation_id, change)
