"""The assistant's settings: the knowledge settings plus answering and the inbox."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from index.settings import PROJECT_ROOT, ProjectPath, Settings


class AssistantSettings(Settings):
    inbox_db: ProjectPath = Field(
        PROJECT_ROOT / "var" / "inbox.sqlite3",
        description="SQLite file for requests to talk to a person, feedback and unanswered questions",
    )
    max_citations: int = Field(3, ge=1, le=5, description="Paragraphs cited per answer")


@lru_cache(maxsize=1)
def get_assistant_settings() -> "AssistantSettings":
    return AssistantSettings()
