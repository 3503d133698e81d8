"""Start the Rasa action server: ``python -m actions`` (port from ASSISTANT_ACTIONS_PORT, default 5055).

Loads the search index, the model and the threshold figures before it accepts requests, so the
first question is as fast as the others; an index problem stops start-up with the fix in the message.
Besides rasa-sdk's routes it serves /health/live and /health/ready (actions/health.py).
"""

from __future__ import annotations

import logging
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
             time.perf_counter() - started, len(rules), runtime.settings.inbox_db)
    settings = get_action_settings()
    from rasa_sdk import utils
    from rasa_sdk.endpoint import create_app
    from rasa_sdk.plugin import plugin_manager

    from .health import add_health_routes

    # rasa_sdk.endpoint.run, plus the readiness routes
    app = create_app("actions.actions", cors_origins=None)
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    add_health_routes(app, runtime)
    app.run(settings.actions_host, settings.actions_port, workers=utils.number_of_sanic_workers())
    return 0


if __name__ == "__main__":
    sys.exit(main())
