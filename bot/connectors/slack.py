"""Slack for the assistant: Rasa's Slack channel with a configurable API base URL (GovSlack, tests)
and answers rendered with their citations as one Block Kit message.

Loaded by Rasa (its own environment), configured in the credentials file that `make run` writes
when ASSISTANT_SLACK_BOT_TOKEN and ASSISTANT_SLACK_SIGNING_SECRET are set:

    bot.connectors.slack.CitingSlackInput:
      slack_token: xoxb-…
      slack_signing_secret: …
      api_base_url: https://slack.com/api/

Requests without a valid X-Slack-Signature are refused by Rasa's SlackInput (HTTP 400).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.core.channels.channel import OutputChannel
from rasa.core.channels.slack import SlackBot, SlackInput
from slack_sdk.web.async_client import AsyncWebClient

from assistant.payload import body_of, citation_place, coverage_label, coverage_of, is_answer

SLACK_API = "https://slack.com/api/"
SECTION_LIMIT = 2900  # Slack allows 3000 characters in a section's text
CONTEXT_LIMIT = 1900


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as markup; user-visible text must not become links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def citation_blocks(custom: Dict[Text, Any]) -> List[Dict[Text, Any]]:
    """Block Kit: the answer as a section, then one compact context line per citation."""
    text = _escape(body_of(custom))
    language = str(custom.get("language") or "sv")
    blocks: List[Dict[Text, Any]] = []
    label = coverage_label(coverage_of(custom), language)
    if label:  # partial and none look different from a full answer
        mark = ":warning:" if coverage_of(custom) == "partial" else ":no_entry_sign:"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"{mark} *{_escape(label)}*"}]})
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, SECTION_LIMIT)}})
    citations = custom.get("citations") or []
    if citations:
        blocks.append({"type": "divider"})
    for c in citations:
        where = citation_place(c, language)
        quote = c.get("quote") or ""
        line = f"*[{c.get('number', '')}]* {_escape(where)}" + (f"\n_”{_escape(_clip(quote, 600))}”_" if quote else "")
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(line, CONTEXT_LIMIT)}]})
    return blocks


class CitingSlackBot(SlackBot):
    def __init__(self, token: Text, slack_channel: Optional[Text] = None, thread_id: Optional[Text] = None,
                 proxy: Optional[Text] = None, api_base_url: Text = SLACK_API) -> None:
        super().__init__(token, slack_channel, thread_id, proxy)
        self.client = AsyncWebClient(token, proxy=proxy, base_url=api_base_url)

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        custom = message.get("custom")
        if is_answer(custom):
            # One message: the answer and its sources together (the text repeats in `custom`).
            channel = self.slack_channel or recipient_id
            await self._post_message(channel=channel, as_user=True, text=_clip(body_of(custom),
                                                                                SECTION_LIMIT),
                                     blocks=citation_blocks(custom))
            return
        await super().send_response(recipient_id, message)


class CitingSlackInput(SlackInput):
    @classmethod
    def name(cls) -> Text:
        return "slack"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "CitingSlackInput":
        if not credentials:
            cls.raise_missing_credentials_exception()
        channel = super().from_credentials(credentials)
        channel.api_base_url = credentials.get("api_base_url") or SLACK_API
        return channel

    def get_output_channel(self, channel: Optional[Text] = None, thread_id: Optional[Text] = None) -> OutputChannel:
        return CitingSlackBot(self.slack_token, channel or self.slack_channel, thread_id, self.proxy,
                              getattr(self, "api_base_url", SLACK_API))
