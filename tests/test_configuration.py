"""Every setting of every process is in .env.example and in the README's configuration (one settings object per
process, all read from ASSISTANT_* variables): a new field without documentation fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def variables() -> list[str]:
    from actions.settings import ActionSettings
    from service.cluster import ClusterSettings  # extends the stack's, the service's, the assistant's, the index's

    names = set()
    for cls in (ClusterSettings, ActionSettings):
        prefix = cls.model_config.get("env_prefix", "")
        names.update((prefix + name).upper() for name in cls.model_fields)
    return sorted(names)


@pytest.mark.parametrize("document", [".env.example", "README.md"])
def test_every_setting_is_documented(document):
    text = (ROOT / document).read_text(encoding="utf-8")
    names = variables()
    assert len(names) > 50 and all(n.startswith("ASSISTANT_") for n in names)
    assert [n for n in names if not re.search(rf"\b{n}\b", text)] == []  # the whole name, not a prefix of another
