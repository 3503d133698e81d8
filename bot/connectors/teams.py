"""Microsoft Teams (Azure Bot Service) for the assistant, single-tenant or multi-tenant.

Rasa 3.6's botframework connector asks for its outgoing token only at the multi-tenant endpoint
(login.microsoftonline.com/botframework.com), but since 2025-07-31 Azure creates single-tenant bots
only, and those must use login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token. This connector:

- takes a ``tenant_id`` (empty or "botframework.com" keeps multi-tenant working);
- answers only activities whose serviceUrl (where the reply, with the bot's access token, will go) is
  https on an allowed host (``service_url_hosts``: by default the Bot Framework's,
  ``smba.trafficmanager.net`` and ``*.botframework.com``; plain http only for a listed loopback host,
  for local fakes); anything else gets 401 before any key is fetched;
- validates every incoming request's JWT: RS256 signature against the keys published in the Bot
  Framework OpenID configuration, audience = the app id, issuer = the pinned ``issuer``
  (``https://api.botframework.com``; an OpenID configuration without an issuer, or with another one,
  fails closed), expiry, and a ``serviceurl`` claim equal to the activity's serviceUrl (required: a
  token without it is refused); anything else, including unsigned tokens, gets 401. An unknown key id
  refetches the keys at most once per ``KEYS_REFETCH_INTERVAL``;
- never blocks the event loop: tokens, keys and replies go through aiohttp, tokens are cached
  until shortly before they expire and refreshed under a lock;
- renders an answer and its citations as one Adaptive Card;
- keeps Teams conversations apart from every other channel's: the sender id is `teams:<from.id>`;
- refuses a message longer than `max_message_chars` (or not text), or one over the sender's
  `messages_per_minute`, with a reply, before the NLU; when Rasa sends nothing (action server down or
  timed out) the fallback message is sent instead (bot/connectors/fallback.py).

The login, OpenID and connector hosts are settings, so tests can run against local fakes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Text
from urllib.parse import urlsplit

import aiohttp
import jwt
from jwt.algorithms import RSAAlgorithm
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from assistant import guard
from assistant.shared_limits import rate_limiter
from assistant.payload import body_of, citation_place, coverage_label, coverage_of, is_answer
from bot.connectors.admission import admitted
from bot.connectors.fallback import never_silent

logger = logging.getLogger(__name__)

LOGIN_URL = "https://login.microsoftonline.com"
MULTI_TENANT = "botframework.com"
OPENID_CONFIGURATION_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
SCOPE = "https://api.botframework.com/.default"
ISSUER = "https://api.botframework.com"  # what the Bot Framework's OpenID configuration names, pinned
SERVICE_URL_HOSTS = "smba.trafficmanager.net,*.botframework.com"
BEARER = re.compile(r"Bearer\s+(\S+)")
MENTION = re.compile(r"<at>[^<]{0,200}</at>")
KEYS_MAX_AGE = 24 * 3600
KEYS_REFETCH_INTERVAL = 300  # an unknown key id forces a refetch at most this often (seconds)
TOKEN_MARGIN = 120  # refresh the outgoing token this many seconds before it expires
TIMEOUT = aiohttp.ClientTimeout(total=15)


class TokenProvider:
    """Client-credentials token for replies, per app and tenant, cached and refreshed without blocking."""

    def __init__(self, app_id: Text, app_password: Text, tenant_id: Text = MULTI_TENANT,
                 login_url: Text = LOGIN_URL) -> None:
        self.app_id = app_id
        self.app_password = app_password
        self.token_url = f"{login_url.rstrip('/')}/{tenant_id or MULTI_TENANT}/oauth2/v2.0/token"
        self._token: Optional[Text] = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> Text:
        if self._token and time.time() < self._expires_at - TOKEN_MARGIN:
            return self._token
        async with self._lock:
            if self._token and time.time() < self._expires_at - TOKEN_MARGIN:
                return self._token
            data = {"grant_type": "client_credentials", "client_id": self.app_id,
                    "client_secret": self.app_password, "scope": SCOPE}
            async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
                async with session.post(self.token_url, data=data) as resp:
                    body = await resp.json(content_type=None)
                    if resp.status != 200 or "access_token" not in body:
                        raise RuntimeError(f"token request to {self.token_url} failed: {resp.status} {body}")
            self._token = body["access_token"]
            self._expires_at = time.time() + int(body.get("expires_in", 3600))
            return self._token


def service_url_hosts(value: Any) -> List[Text]:
    """The allowed serviceUrl hosts: a comma-separated string or a list; ``*.example.com`` = any
    subdomain of example.com (not example.com itself)."""
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    hosts = [h.strip().lower().rstrip(".") for h in str(value or "").split(",") if h.strip()]
    if not hosts:
        raise ValueError("the Teams channel needs at least one allowed service URL host "
                         "(ASSISTANT_TEAMS_SERVICE_URL_HOSTS)")
    return hosts


def service_url_allowed(url: Any, hosts: Sequence[Text]) -> bool:
    """True when replies may be sent to ``url``: https (http only on a loopback host) on an allowed host,
    no credentials in the URL."""
    from assistant.guard import is_loopback

    if not isinstance(url, str) or not 0 < len(url) <= 2048:
        return False
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    if not host or parts.username is not None or parts.password is not None:
        return False
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(host)):
        return False
    for allowed in hosts:
        if allowed.startswith("*."):
            if host.endswith(allowed[1:]) and len(host) > len(allowed) - 1:
                return True
        elif host == allowed:
            return True
    return False


class JwtValidator:
    """Checks the Authorization header of requests from the Bot Framework connector."""

    def __init__(self, app_id: Text, openid_configuration_url: Text = OPENID_CONFIGURATION_URL,
                 refetch_interval: float = KEYS_REFETCH_INTERVAL, issuer: Text = ISSUER) -> None:
        if not issuer:
            raise ValueError("the Teams channel needs the expected token issuer (ASSISTANT_TEAMS_ISSUER)")
        self.app_id = app_id
        self.expected_issuer = issuer
        self.openid_configuration_url = openid_configuration_url
        self.refetch_interval = refetch_interval
        self._keys: Dict[Text, Any] = {}
        self._issuer: Optional[Text] = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _refresh(self, force: bool = False) -> None:
        async with self._lock:
            fresh = self._keys and self._issuer and time.time() - self._fetched_at < KEYS_MAX_AGE
            if fresh and (not force or time.time() - self._fetched_at < self.refetch_interval):
                return  # a forced refetch (unknown key id) happens at most once per refetch_interval
            async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
                async with session.get(self.openid_configuration_url) as resp:
                    resp.raise_for_status()
                    config = await resp.json(content_type=None)
                async with session.get(config["jwks_uri"]) as resp:
                    resp.raise_for_status()
                    keys = await resp.json(content_type=None)
            issuer = config.get("issuer")
            if not isinstance(issuer, str) or not issuer.strip():
                raise ValueError(f"no issuer in {self.openid_configuration_url}")  # never skip the issuer check
            if issuer != self.expected_issuer:  # a changed or hijacked configuration: trust none of its keys
                raise ValueError(f"{self.openid_configuration_url} names the issuer {issuer!r}, "
                                 f"not {self.expected_issuer!r}")
            self._issuer = issuer
            self._keys = {k["kid"]: k for k in keys.get("keys", []) if "kid" in k}
            self._fetched_at = time.time()

    async def validate(self, auth_header: Optional[Text], service_url: Optional[Text]) -> Optional[Text]:
        """None when the request is authentic, else the reason it is refused."""
        if not auth_header:
            return "No authorization header provided."
        match = BEARER.match(auth_header)
        if not match:
            return "No Bearer token provided in Authorization header."
        token = match.group(1)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return "Malformed token."
        if header.get("alg") != "RS256":
            return "Token is not signed with RS256."
        try:
            await self._refresh()
            if header.get("kid") not in self._keys:
                await self._refresh(force=True)  # keys rotate; fetch once more before refusing
        except (aiohttp.ClientError, asyncio.TimeoutError, KeyError, ValueError) as exc:
            logger.error("could not fetch the Bot Framework signing keys: %s", exc)
            return "Signing keys unavailable."
        key = self._keys.get(header.get("kid"))
        if key is None:
            return "Unknown signing key."
        try:
            claims = jwt.decode(token, key=RSAAlgorithm.from_jwk(json.dumps(key)), algorithms=["RS256"],
                                audience=self.app_id, issuer=self.expected_issuer,
                                options={"require": ["exp", "iss", "aud"]}, leeway=300)
        except jwt.PyJWTError as exc:
            return f"Could not validate JWT token: {exc}."
        claimed = claims.get("serviceurl") or claims.get("serviceUrl")
        if not isinstance(claimed, str) or not claimed:
            return "Token has no serviceurl claim."
        if not isinstance(service_url, str) or claimed.rstrip("/").lower() != service_url.rstrip("/").lower():
            return "Token was issued for another service URL."
        return None


def adaptive_card(custom: Dict[Text, Any]) -> Dict[Text, Any]:
    """The answer and its citations as an Adaptive Card (1.4: Teams desktop, web and mobile)."""
    language = str(custom.get("language") or "sv")
    body: List[Dict[Text, Any]] = []
    coverage = coverage_of(custom)
    if coverage != "full":  # partial and none look different from a full answer
        body.append({"type": "TextBlock", "text": coverage_label(coverage, language), "weight": "Bolder",
                     "color": "Warning" if coverage == "partial" else "Attention", "wrap": True})
    body.append({"type": "TextBlock", "text": body_of(custom), "wrap": True})
    citations = custom.get("citations") or []
    if citations:
        label = "Sources" if language == "en" else "Källor"
        body.append({"type": "TextBlock", "text": label, "weight": "Bolder", "separator": True, "spacing": "Medium"})
    for c in citations:
        where = citation_place(c, language)
        items = [{"type": "TextBlock", "text": f"[{c.get('number', '')}] {where}", "wrap": True, "size": "Small",
                  "weight": "Bolder"}]
        if c.get("quote"):
            items.append({"type": "TextBlock", "text": f"”{c['quote']}”", "wrap": True, "size": "Small",
                          "isSubtle": True})
        body.append({"type": "Container", "items": items, "spacing": "Small"})
    return {"contentType": "application/vnd.microsoft.card.adaptive",
            "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                        "version": "1.4", "body": body}}


class TeamsOutput(OutputChannel):
    @classmethod
    def name(cls) -> Text:
        return "botframework"

    def __init__(self, tokens: TokenProvider, conversation: Dict[Text, Any], bot: Dict[Text, Any],
                 service_url: Text, reply_to: Optional[Text] = None) -> None:
        self.tokens = tokens
        self.conversation = conversation
        self.bot = bot
        self.url = f"{service_url.rstrip('/')}/v3/conversations/{conversation['id']}/activities"
        self.reply_to = reply_to

    async def _send(self, recipient_id: Text, activity: Dict[Text, Any]) -> bool:
        if recipient_id.startswith("teams:"):  # our conversation id; the Bot Framework wants the user's own id
            recipient_id = recipient_id[len("teams:"):]
        data = {"type": "message", "recipient": {"id": recipient_id}, "from": self.bot,
                "conversation": self.conversation, **activity}
        if self.reply_to:
            data["replyToId"] = self.reply_to
        headers = {"Authorization": f"Bearer {await self.tokens.token()}"}
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            async with session.post(self.url, json=data, headers=headers) as resp:
                if resp.status >= 300:
                    logger.error("Bot Framework refused a reply: %s %s", resp.status, await resp.text())
                    return False
                return True

    async def deliver_text(self, recipient_id: Text, text: Text) -> bool:
        """A plain-text message outside a turn (a staff reply); True when the Bot Framework took it."""
        return await self._send(recipient_id, {"text": text, "textFormat": "plain"})

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        custom = message.get("custom")
        if is_answer(custom):
            await self._send(recipient_id, {"text": "", "attachments": [adaptive_card(custom)]})
            return
        await super().send_response(recipient_id, message)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self._send(recipient_id, {"text": text, "textFormat": "plain"})

    async def send_text_with_buttons(self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]],
                                     **kwargs: Any) -> None:
        actions = [{"type": "imBack", "title": b["title"], "value": b["payload"]} for b in buttons]
        card = {"contentType": "application/vnd.microsoft.card.hero", "content": {"text": text, "buttons": actions}}
        await self._send(recipient_id, {"attachments": [card]})

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        await self._send(recipient_id, json_message)


def conversation_reference(activity: Dict[Text, Any]) -> Dict[Text, Any]:
    """What a later message to this user needs (a staff reply from the inbox, bot/connectors/staff_reply.py),
    kept in the tracker with the user's message: the serviceUrl (already allowed and signed for), the
    conversation and the bot's account, their ids and names only."""
    def pick(value: Any, keys: Sequence[Text]) -> Dict[Text, Any]:
        value = value if isinstance(value, dict) else {}
        return {k: str(value[k])[:300] for k in keys if isinstance(value.get(k), (str, int))}

    return {"teams": {"service_url": str(activity.get("serviceUrl"))[:2048],
                      "conversation": pick(activity.get("conversation"), ("id", "tenantId", "conversationType")),
                      "bot": pick(activity.get("recipient"), ("id", "name"))}}


class TeamsInput(InputChannel):
    """POST /webhooks/botframework/webhook (the messaging endpoint of the Azure bot)."""

    @classmethod
    def name(cls) -> Text:
        return "botframework"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "TeamsInput":
        if not credentials:
            cls.raise_missing_credentials_exception()
        return cls(credentials["app_id"], credentials["app_password"], credentials.get("tenant_id") or MULTI_TENANT,
                   credentials.get("login_url") or LOGIN_URL,
                   credentials.get("openid_configuration_url") or OPENID_CONFIGURATION_URL,
                   int(credentials.get("max_message_chars") or guard.MAX_MESSAGE_CHARS),
                   int(credentials.get("messages_per_minute", guard.MESSAGES_PER_MINUTE)),
                   credentials.get("service_url_hosts") or SERVICE_URL_HOSTS,
                   credentials.get("issuer") or ISSUER, credentials.get("redis_url") or None)

    def __init__(self, app_id: Text, app_password: Text, tenant_id: Text = MULTI_TENANT, login_url: Text = LOGIN_URL,
                 openid_configuration_url: Text = OPENID_CONFIGURATION_URL,
                 max_message_chars: int = guard.MAX_MESSAGE_CHARS,
                 messages_per_minute: int = guard.MESSAGES_PER_MINUTE,
                 allowed_service_url_hosts: Any = SERVICE_URL_HOSTS, issuer: Text = ISSUER,
                 redis_url: Optional[Text] = None) -> None:
        self.app_id = app_id
        self.service_url_hosts = service_url_hosts(allowed_service_url_hosts)
        self.max_message_chars = max_message_chars
        self.limiter = rate_limiter(messages_per_minute, "teams-sender", redis_url)
        self.tokens = TokenProvider(app_id, app_password, tenant_id, login_url)
        self.validator = JwtValidator(app_id, openid_configuration_url, issuer=issuer)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("teams_webhook", __name__)
        on_new_message = never_silent(admitted(on_new_message))

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                activity = request.json or {}
            except Exception:  # malformed JSON
                activity = {}
            if not isinstance(activity, dict):
                activity = {}
            if activity.get("serviceUrl") is not None and not service_url_allowed(activity["serviceUrl"],
                                                                                  self.service_url_hosts):
                # The reply (with the bot's access token) would go there: refused before any key is fetched.
                logger.warning("Teams activity refused: service URL %.200r is not allowed", activity["serviceUrl"])
                return response.text("Service URL is not allowed.", status=HTTPStatus.UNAUTHORIZED)
            refused = await self.validator.validate(request.headers.get("Authorization"), activity.get("serviceUrl"))
            if refused:
                return response.text(refused, status=HTTPStatus.UNAUTHORIZED)
            if activity.get("type") != "message" or not activity.get("serviceUrl"):
                return response.text("", status=HTTPStatus.OK)
            user = (activity.get("from") or {}).get("id")
            conversation = activity.get("conversation")
            if not isinstance(user, str) or not user or not isinstance(conversation, dict) or "id" not in conversation:
                return response.text("The activity has no sender or conversation.", status=HTTPStatus.BAD_REQUEST)
            out = TeamsOutput(self.tokens, conversation, activity.get("recipient") or {},
                              activity["serviceUrl"], activity.get("id"))
            sender_id = guard.sender(guard.TEAMS, user)
            text = activity.get("text")
            if isinstance(text, str) and len(text) <= self.max_message_chars:
                text = MENTION.sub("", text).strip()  # drop @mentions of the bot (the text is capped first)
            refusal = guard.rate_refusal(self.limiter, sender_id, text) or guard.check_message(text,
                                                                                             self.max_message_chars)
            if refusal:
                logger.info("Teams message refused (%s) for %s", refusal.reason, sender_id)
                await out.send_text_message(sender_id, refusal.text)
                return response.text("", status=HTTPStatus.OK)
            await on_new_message(UserMessage(text=text, output_channel=out, sender_id=sender_id,
                                             input_channel=self.name(), metadata=guard.cap_metadata(
                                                 conversation_reference(activity))))
            return response.text("", status=HTTPStatus.OK)

        return webhook
