"""Who is talking, through which channel, and whether a message may reach the NLU at all.

Shared by the Rasa channels (bot/connectors/, run in Rasa's own environment) and the web service
(service/), so it uses the standard library only:

- **Web chat sessions**: the server issues them. A token is ``<id>.<expires>.<signature>``: a random
  32-hex id, a Unix expiry time and HMAC-SHA256 over both with a secret from the environment
  (``ASSISTANT_WEBCHAT_SECRET``). Nobody without the secret can make one, and it stops working when it
  expires.
- **Sender ids carry their channel** (``web:…``, ``rest:…``, ``slack:…``, ``teams:…``), so one channel
  can never address a conversation of another.
- **Limits before any work**: a message that is not a string, is empty, holds invalid unicode or is
  longer than the cap is refused with a clear reply (Swedish, English when the text looks English);
  metadata larger than the cap is dropped; a sender over its per-minute message rate, or a client
  address over its own (summed over all its conversations), is told to wait (:class:`RateLimiter`, in
  memory). The client's address is the socket peer, or, when the peer is a trusted reverse proxy
  (``ASSISTANT_TRUSTED_PROXIES``), what X-Forwarded-For says past the trusted proxies
  (:func:`client_address`).
- **Never an empty reply**: :data:`FAILED` is what a user reads when Rasa produced nothing to send
  (an action server that is down or timed out); bot/connectors/fallback.py sends it.

Nothing here uses a regular expression on user text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Callable, Optional

MAX_MESSAGE_CHARS = 2000
MAX_METADATA_BYTES = 4096
WEBCHAT_SESSION_DAYS = 30
MESSAGES_PER_MINUTE = 20
MESSAGES_PER_ADDRESS_MINUTE = 60
SESSIONS_PER_ADDRESS_HOUR = 60

WEB, REST, SLACK, TEAMS = "web", "rest", "slack", "teams"
_SESSION_ID_LEN = 32
_HEX = frozenset("0123456789abcdef")
_SIGNING_CONTEXT = b"webchat-session.v1."
_MAX_TOKEN_LEN = 128


# -- web chat sessions ----------------------------------------------------------------------------
@dataclass(frozen=True)
class WebSession:
    session_id: str  # 32 hex characters, not secret (the staff inbox and logs show web:<id>)
    expires_at: int
    token: str  # what the browser keeps and sends back

    @property
    def sender_id(self) -> str:
        return sender(WEB, self.session_id)


def _key(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if len(key) < 16:
        raise ValueError("the web chat secret must be at least 16 characters (set ASSISTANT_WEBCHAT_SECRET)")
    return key


def _signature(key: bytes, session_id: str, expires_at: int) -> bytes:
    mac = hmac.new(key, _SIGNING_CONTEXT + f"{session_id}.{expires_at}".encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=")


def issue_session(secret: str | bytes, days: float = WEBCHAT_SESSION_DAYS, session_id: Optional[str] = None,
                  now: Optional[float] = None) -> WebSession:
    """A new signed session (or a renewed one for ``session_id``), valid for ``days``."""
    key = _key(secret)
    session_id = session_id or secrets.token_hex(_SESSION_ID_LEN // 2)
    if not _is_session_id(session_id):
        raise ValueError("not a session id")
    expires_at = int((time.time() if now is None else now) + days * 86400)
    token = f"{session_id}.{expires_at}." + _signature(key, session_id, expires_at).decode("ascii")
    return WebSession(session_id, expires_at, token)


def _is_session_id(value: str) -> bool:
    return len(value) == _SESSION_ID_LEN and all(c in _HEX for c in value)


def verify_session(token: Any, secret: str | bytes, now: Optional[float] = None) -> Optional[WebSession]:
    """The session a token stands for, or None when it is malformed, forged or expired."""
    if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN_LEN or not token.isascii():
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    session_id, expires, signature = parts
    if not _is_session_id(session_id) or not expires.isdigit() or len(expires) > 12:
        return None
    expires_at = int(expires)
    # bytes on both sides: compare_digest on str refuses non-ASCII input with a TypeError
    if not hmac.compare_digest(_signature(_key(secret), session_id, expires_at), signature.encode("ascii")):
        return None
    if expires_at <= (time.time() if now is None else now):
        return None
    return WebSession(session_id, expires_at, token)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


# -- sender ids -----------------------------------------------------------------------------------
def sender(channel: str, *parts: Any) -> str:
    """``channel:part1:part2``: the conversation id Rasa keeps, the channel always first."""
    if channel not in (WEB, REST, SLACK, TEAMS):
        raise ValueError(f"unknown channel {channel!r}")
    return ":".join([channel, *(str(p) for p in parts)])


def channel_of(sender_id: str) -> Optional[str]:
    """The channel a sender id belongs to (None for ids from before channels were prefixed)."""
    head, sep, _ = (sender_id or "").partition(":")
    return head if sep and head in (WEB, REST, SLACK, TEAMS) else None


# -- the REST channel's credential ----------------------------------------------------------------
_PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")
_LOOPBACK_NAMES = frozenset(("localhost", "ip6-localhost"))


def is_loopback(host: Optional[str]) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost (an address Rasa may listen on, or a peer's address)."""
    import ipaddress

    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def rest_access_refused(token: Optional[str], authorization: Optional[str], allow_loopback_without_token: bool,
                        peer: Optional[str], headers: Any = None) -> Optional[str]:
    """None when a REST request may pass, else why not (the reply's message).

    With a token configured, ``Authorization: Bearer <token>`` is required from everyone. Without
    one, only requests from this machine pass, and only when allowed (Rasa listening on a loopback
    address): a request that came through a proxy (Forwarded, X-Forwarded-For, X-Real-IP) never counts
    as local.
    """
    if token:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode("utf-8", "replace"),
                                                              token.encode("utf-8")):
            return None
        return "REST-kanalen kräver Authorization: Bearer <ASSISTANT_REST_TOKEN>."
    if not allow_loopback_without_token:
        return "REST-kanalen är stängd: sätt ASSISTANT_REST_TOKEN och skicka den som Authorization: Bearer."
    proxied = any((headers or {}).get(h) for h in _PROXY_HEADERS)
    if proxied or not is_loopback(peer):
        return ("REST-kanalen svarar utan token bara på anrop från samma dator; sätt ASSISTANT_REST_TOKEN och "
                "skicka den som Authorization: Bearer.")
    return None


# -- the client's address ---------------------------------------------------------------------------
def trusted_networks(value: Any) -> tuple:
    """The reverse proxies whose X-Forwarded-For is believed: a comma-separated string (or a list) of
    addresses and networks (``127.0.0.1, 10.0.0.0/8, ::1``). Empty = none (the socket peer is the client)."""
    import ipaddress

    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    networks = []
    for item in str(value or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not an address or network in ASSISTANT_TRUSTED_PROXIES: {item!r}") from None
    return tuple(networks)


def _address(value: Any):
    import ipaddress

    if not isinstance(value, str) or not 0 < len(value) <= 64:
        return None
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def client_address(peer: Optional[str], forwarded_for: Any, trusted: tuple) -> str:
    """The address a request came from, for per-address limits.

    The socket peer, unless the peer is one of the ``trusted`` proxies: then X-Forwarded-For is read
    from the right (what the nearest proxy appended) past every trusted proxy, and the first address
    that is not one is the client. Anything a client wrote further left is never believed, nor is an
    entry that is not an address (the nearest trustworthy hop counts then). Returns a string ("unknown"
    without a usable peer).
    """
    hop = _address(peer)
    if hop is None:
        return "unknown"
    if not trusted or not any(hop in n for n in trusted if n.version == hop.version):
        return str(hop)
    if isinstance(forwarded_for, (list, tuple)):
        forwarded_for = ",".join(str(v) for v in forwarded_for)
    if not isinstance(forwarded_for, str):
        return str(hop)
    items = forwarded_for[-4096:].split(",")  # the right end is what our proxies wrote
    if len(forwarded_for) > 4096:
        items = items[1:]  # the first one may have been cut
    for item in reversed(items[-32:]):
        address = _address(item)
        if address is None:
            break
        hop = address
        if not any(hop in n for n in trusted if n.version == hop.version):
            break
    return str(hop)


def address_key(address: str) -> str:
    """The key a per-address limit counts under: the address itself for IPv4, its /64 for IPv6
    (one subscriber usually holds a whole /64, so single IPv6 addresses would be free to change)."""
    import ipaddress

    parsed = _address(address)
    if parsed is None:
        return f"addr:{address}"
    if parsed.version == 6:
        return "addr:" + str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return f"addr:{parsed}"


CLIENT_TAG = "client"  # the metadata key the web chat sets (never a client): see client_tag


def client_tag(secret: str, address: str) -> str:
    """An opaque tag of a web chat client's address (its per-address key), which the web chat adds to
    every message's metadata so that the action server can count hand-overs, feedback and unanswered
    questions per client over all its conversations. HMAC-SHA256 with the web chat's secret: the
    trackers, which keep metadata, hold neither the address nor a way back to it."""
    return hmac.new(secret.encode("utf-8"), address_key(address).encode("utf-8"), hashlib.sha256).hexdigest()[:32]


# -- limits ---------------------------------------------------------------------------------------
_EN_WORDS = frozenset(("the is are what how can could we you do does of to and for in an my our this that with it be "
                       "should would when who where why which about please hello hi hey thanks thank want need "
                       "i i'm it's there their have has not").split())
_SV_WORDS = frozenset(("och är det att en ett vad hur kan vi jag du för på med om som inte har till av den de man "
                       "ska måste eller vår min hej tack vill behöver när vem var varför vilken finns får").split())


def looks_english(text: str) -> bool:
    """A cheap guess from function words in the first 2,000 characters (Swedish unless clearly English).

    assistant/language.py decides with word frequencies (wordfreq), which Rasa's environment does not
    have; for a refusal this is enough.
    """
    sample = text[:2000].lower()
    if any(c in sample for c in "åäö"):
        return False
    en = sv = 0
    for word in sample.split()[:300]:
        word = word.strip(".,!?;:()\"'”“")
        en += word in _EN_WORDS
        sv += word in _SV_WORDS
    return en >= 2 and en > sv


TOO_LONG = {
    "sv": "Ditt meddelande är för långt för mig ({length} tecken; högst {limit}). Skriv en kortare fråga – "
          "gärna en fråga i taget.",
    "en": "Your message is too long for me ({length} characters; at most {limit}). Please write a shorter "
          "question – one question at a time.",
}
UNREADABLE = {
    "sv": "Jag kunde inte läsa ditt meddelande. Skriv din fråga som vanlig text och försök igen.",
    "en": "I could not read your message. Please write your question as plain text and try again.",
}
EMPTY = {
    "sv": "Meddelandet var tomt. Skriv din fråga och försök igen.",
    "en": "The message was empty. Please write your question and try again.",
}
RATE_LIMITED = {
    "sv": "Du skickar meddelanden snabbare än jag hinner svara. Vänta en minut och skriv sedan din fråga igen.",
    "en": "You are sending messages faster than I can answer. Please wait a minute and ask again.",
}
FAILED = {
    "sv": "Något gick fel hos mig – försök igen om en stund, eller be att få prata med en person.",
    "en": "Something went wrong on my side – please try again in a moment, or ask to talk to a person.",
}
TOO_MANY_SESSIONS = {
    "sv": "Det har startats väldigt många chattar från din adress den senaste timmen. Vänta en stund och ladda "
          "sedan om sidan.",
    "en": "Very many chats have been started from your address in the last hour. Please wait a while and then "
          "reload the page.",
}
SESSION_REQUIRED = {
    "sv": "Chatten har tappat sin session. Ladda om sidan och skriv din fråga igen.",
    "en": "The chat lost its session. Please reload the page and ask again.",
}


@dataclass(frozen=True)
class Refusal:
    reason: str  # too_long | not_text | empty | bad_unicode | rate_limited | address_rate_limited | too_many_sessions
    text: str  # what the user reads
    language: str


def check_message(text: Any, limit: int = MAX_MESSAGE_CHARS) -> Optional[Refusal]:
    """None when ``text`` may go to Rasa; otherwise why not, with the reply to send instead."""
    if not isinstance(text, str):
        return Refusal("not_text", UNREADABLE["sv"], "sv")
    if len(text) > limit:
        lang = "en" if looks_english(text) else "sv"
        return Refusal("too_long", TOO_LONG[lang].format(length=f"{len(text):,}".replace(",", " "),
                                                         limit=f"{limit:,}".replace(",", " ")), lang)
    try:
        text.encode("utf-8")  # lone surrogates ("\ud800") cannot be encoded
    except UnicodeEncodeError:
        return Refusal("bad_unicode", UNREADABLE["sv"], "sv")
    if not text.strip():
        return Refusal("empty", EMPTY["sv"], "sv")
    return None


def cap_metadata(metadata: Any, limit: int = MAX_METADATA_BYTES) -> dict:
    """``metadata`` when it is a JSON object of at most ``limit`` bytes, else {} (dropped, not cut)."""
    if isinstance(metadata, str):
        if len(metadata) > limit:
            return {}
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return {}
    if not isinstance(metadata, dict) or not metadata:
        return {}
    try:
        size = len(json.dumps(metadata, ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
        return {}
    return metadata if size <= limit else {}


FEEDBACK_REASONS = ("wrong_source", "not_answered", "outdated")


def allowed_metadata(metadata: Any, limit: int = MAX_METADATA_BYTES) -> dict:
    """What a client (the web chat page, a REST caller) may attach to a message: ``feedback_for``
    (the answer a 👍/👎 is about: ``question`` text, ``paragraph_ids``, ``reason``), each field checked
    for type and size, and ``lang`` ("sv" or "en": the page's interface language, which a button click
    such as "/request_human" answers in when the conversation has no language yet); anything else is
    dropped (after :func:`cap_metadata`). The actions still trust none of it: they only select among
    the conversation's own messages and citations."""
    metadata = cap_metadata(metadata, limit)
    lang = {"lang": metadata["lang"]} if metadata.get("lang") in ("sv", "en") else {}
    target = metadata.get("feedback_for")
    if not isinstance(target, dict):
        return lang
    out: dict = {}
    question = target.get("question")
    if isinstance(question, str) and 0 < len(question) <= MAX_MESSAGE_CHARS:
        out["question"] = question
    ids = target.get("paragraph_ids")
    if isinstance(ids, list):
        out["paragraph_ids"] = [i for i in ids if isinstance(i, str) and 0 < len(i) <= 100][:10]
    if target.get("reason") in FEEDBACK_REASONS:
        out["reason"] = target["reason"]
    return {"feedback_for": out, **lang}


def language_of(text: Any) -> str:
    """"en" when ``text`` looks English, else "sv" (for the guard's own replies)."""
    return "en" if isinstance(text, str) and looks_english(text) else "sv"


# -- per-sender message rate ------------------------------------------------------------------------
class RateLimiter:
    """At most ``limit`` messages per ``window`` seconds per key (a sender id), in this process's memory.

    Refused messages are not counted (a sender who keeps sending is let in again as its earlier
    messages age out of the window). At most ``max_keys`` senders are remembered; the one unused for
    longest is forgotten first. ``limit`` <= 0 turns the limit off.
    """

    def __init__(self, limit: int = MESSAGES_PER_MINUTE, window: float = 60.0, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.max_keys, self.clock = int(limit), float(window), int(max_keys), clock
        self._seen: "OrderedDict[str, deque[float]]" = OrderedDict()

    def allow(self, key: str) -> bool:
        """True when ``key`` may send a message now (and counts it)."""
        if self.limit <= 0:
            return True
        now = self.clock()
        times = self._seen.get(key)
        if times is None:
            while len(self._seen) >= self.max_keys:
                self._seen.popitem(last=False)
            times = self._seen[key] = deque()
        else:
            self._seen.move_to_end(key)
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.limit:
            return False
        times.append(now)
        return True

    def forget_last(self, key: str) -> None:
        """Take back the latest message counted for ``key`` (it was refused by another limit)."""
        times = self._seen.get(key)
        if times:
            times.pop()


def rate_refusal(limiter: Optional[RateLimiter], sender_id: str, text: Any,
                 address_limiter: Optional[RateLimiter] = None, address: Optional[str] = None) -> Optional[Refusal]:
    """None when ``sender_id`` may send ``text`` now, else the reply telling it to wait.

    With ``address_limiter``, the client's ``address`` (see :func:`client_address`) must also be under
    its own rate, summed over all the conversations it holds (a new web chat session or REST sender
    id is free, an address is not). A message refused by one limit is not counted by the other.
    """
    if limiter is not None and not limiter.allow(sender_id):
        reason = "rate_limited"
    elif address_limiter is not None and address is not None and not address_limiter.allow(address_key(address)):
        reason = "address_rate_limited"
        if limiter is not None:  # not answered, so it does not count against the conversation either
            limiter.forget_last(sender_id)
    else:
        return None
    lang = language_of(text if isinstance(text, str) else "")
    return Refusal(reason, RATE_LIMITED[lang], lang)
