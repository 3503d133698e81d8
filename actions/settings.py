"""Settings of the action server process: the knowledge settings plus the assistant's own."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from index.settings import PROJECT_ROOT, ProjectPath, Settings


class ActionSettings(Settings):
    actions_host: str = Field("127.0.0.1", description="Address the Rasa action server listens on")
    actions_port: int = Field(5055, ge=1, le=65535, description="Port of the Rasa action server")
    inbox_db: ProjectPath = Field(
        PROJECT_ROOT / "var" / "inbox.sqlite3",
        description="SQLite file for requests to talk to a person, feedback and unanswered questions",
    )
    max_citations: int = Field(3, ge=1, le=5, description="Paragraphs cited per answer")
    # No-answer decision (see README, "When the assistant says it does not know"): the corpus covers
    # a question when the best BM25 score or the best cosine similarity reaches the threshold for
    # what the NLU made of the message. Calibrated with `python -m actions.calibrate`.
    domain_lexical_min: float = Field(5.25, description="BM25 needed when NLU recognised a domain question")
    domain_dense_min: float = Field(0.875, description="Cosine needed when NLU recognised a domain question")
    other_lexical_min: float = Field(5.25, description="BM25 needed for unclassified messages (NLU fallback)")
    other_dense_min: float = Field(0.875, description="Cosine needed for unclassified messages")
    out_of_scope_lexical_min: float = Field(5.5, description="BM25 needed when NLU says out of scope")
    out_of_scope_dense_min: float = Field(0.89, description="Cosine needed when NLU says out of scope")


@lru_cache(maxsize=1)
def get_action_settings() -> ActionSettings:
    return ActionSettings()
