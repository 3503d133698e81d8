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
    inbox_max_text_chars: int = Field(1000, ge=50, le=100_000, description="Longest question stored in the inbox "
                                      "(longer ones are cut)")
    inbox_handoffs_per_sender_hour: int = Field(3, ge=1, description="Requests for a person one conversation may "
                                                "make per hour")
    inbox_feedback_per_sender_hour: int = Field(30, ge=1, description="👍/👎 one conversation may store per hour")
    inbox_unanswered_per_sender_hour: int = Field(30, ge=1, description="Unanswered questions stored per "
                                                  "conversation and hour")
    inbox_rows_per_hour: int = Field(1000, ge=1, description="Rows of each kind (requests, feedback, unanswered) "
                                     "all users together may add per hour")

    def inbox_limits(self):
        from .inbox import InboxLimits

        return InboxLimits(max_text_chars=self.inbox_max_text_chars,
                           handoffs_per_sender_hour=self.inbox_handoffs_per_sender_hour,
                           feedback_per_sender_hour=self.inbox_feedback_per_sender_hour,
                           unanswered_per_sender_hour=self.inbox_unanswered_per_sender_hour,
                           per_hour=self.inbox_rows_per_hour)


@lru_cache(maxsize=1)
def get_assistant_settings() -> "AssistantSettings":
    return AssistantSettings()
