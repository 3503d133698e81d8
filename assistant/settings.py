"""The assistant's settings: the knowledge settings plus answering and the inbox."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr

from index.settings import PROJECT_ROOT, Settings, project_path


def _inbox_database(value: Any) -> Any:
    """A URL (``postgresql://user:password@host/db``) is kept as a secret, since it may hold a password;
    anything else is a SQLite file path (relative to the project root)."""
    if isinstance(value, (SecretStr, Path)):
        return project_path(value) if isinstance(value, Path) else value
    if isinstance(value, str) and "://" in value:
        return SecretStr(value)
    return project_path(Path(value))


# A SQLite file (Path) or a database URL (SecretStr: never printed); assistant.inbox.describe_database
# shows either safely.
InboxDatabase = Annotated[Path | SecretStr, BeforeValidator(_inbox_database)]


class AssistantSettings(Settings):
    inbox_db: InboxDatabase = Field(
        PROJECT_ROOT / "var" / "inbox.sqlite3",
        description="Requests to talk to a person, feedback and unanswered questions: a SQLite file, or a "
        "postgresql://user:password@host:port/db URL (its password is never printed)",
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
    inbox_handoffs_per_client_hour: int = Field(10, ge=1, description="Requests for a person one web chat client "
                                                "(address) may make per hour over all its conversations")
    inbox_feedback_per_client_hour: int = Field(100, ge=1, description="👍/👎 one web chat client (address) may "
                                                "store per hour over all its conversations")
    inbox_unanswered_per_client_hour: int = Field(100, ge=1, description="Unanswered questions stored per web "
                                                  "chat client (address) and hour")
    redis_url: SecretStr | None = Field(None, description="redis://:password@host:port/db: Rasa's lock store, the "
                                        "web chat's socket.io messages across Rasa replicas, and the rate limits "
                                        "counted for all replicas together (unset: one Rasa process, limits per process)")
    # What a person who asks for a human is told before giving contact details (texts, in each language).
    handoff_reply_time: str = Field("inom två arbetsdagar", min_length=1, max_length=200,
                                    description="When staff answer a request for a person (Swedish)")
    handoff_reply_time_en: str = Field("within two working days", min_length=1, max_length=200,
                                       description="The same, in English")
    handoff_staff: str = Field("personalen på navet eller kommunen som driver tjänsten", min_length=1, max_length=200,
                               description="Who reads requests for a person (Swedish)")
    handoff_staff_en: str = Field("the staff of the hub or municipality that runs this service", min_length=1,
                                  max_length=200, description="The same, in English")
    handoff_retention: str = Field("tills ärendet är avslutat, och högst 12 månader", min_length=1, max_length=200,
                                   description="How long a request is kept (Swedish; set it to your routine)")
    handoff_retention_en: str = Field("until the request is closed, and at most 12 months", min_length=1,
                                      max_length=200, description="The same, in English")

    def handoff_terms(self, language: str):
        """The settings' part of the hand-over texts, in ``language``."""
        from .texts import HandoffTerms

        if language == "en":
            return HandoffTerms(self.handoff_reply_time_en, self.handoff_staff_en, self.handoff_retention_en)
        return HandoffTerms(self.handoff_reply_time, self.handoff_staff, self.handoff_retention)

    def inbox_limits(self):
        from .inbox import InboxLimits

        return InboxLimits(max_text_chars=self.inbox_max_text_chars,
                           handoffs_per_sender_hour=self.inbox_handoffs_per_sender_hour,
                           feedback_per_sender_hour=self.inbox_feedback_per_sender_hour,
                           unanswered_per_sender_hour=self.inbox_unanswered_per_sender_hour,
                           per_hour=self.inbox_rows_per_hour,
                           handoffs_per_client_hour=self.inbox_handoffs_per_client_hour,
                           feedback_per_client_hour=self.inbox_feedback_per_client_hour,
                           unanswered_per_client_hour=self.inbox_unanswered_per_client_hour)


@lru_cache(maxsize=1)
def get_assistant_settings() -> "AssistantSettings":
    return AssistantSettings()
