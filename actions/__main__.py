"""Start the Rasa action server: ``python -m actions`` (port from ASSISTANT_ACTIONS_PORT, default 5055).

Loads the search index, the model and the threshold figures before it accepts requests, so the
first question is as fast as the others; an index problem stops start-up with the fix in the message.
"""

from __future__ import annotations

import logging
import os
import sys
import time


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("actions")
    from index.store import IndexUnavailableError

    from assistant.runtime import get_runtime

    from .settings import get_action_settings

    started = time.perf_counter()
    runtime = get_runtime()
    try:
        runtime.answerer.answer("Vad är ett idéburet offentligt partnerskap?")  # loads model, index, word weights
        rules = runtime.threshold_rules
        runtime.inbox
    except IndexUnavailableError as exc:
        log.error("%s", exc)
        return 2
    log.info("search ready in %.1f s; %d threshold figures found in the documents; inbox %s",
             time.perf_counter() - started, len(rules), runtime.inbox.describe())
    settings = get_action_settings()
    os.environ.setdefault("SANIC_HOST", settings.actions_host)
    from rasa_sdk.endpoint import run

    run("actions.actions", port=settings.actions_port, cors_origins=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
