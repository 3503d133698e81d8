"""Settings of the action server process: the assistant's settings plus where to listen."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from assistant.settings import AssistantSettings


class ActionSettings(AssistantSettings):
    actions_host: str = Field("127.0.0.1", description="Address the Rasa action server listens on")
    actions_port: int = Field(5055, ge=1, le=65535, description="Port of the Rasa action server")


@lru_cache(maxsize=1)
def get_action_settings() -> ActionSettings:
    return ActionSettings()
