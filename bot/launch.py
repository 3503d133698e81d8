"""Start ``rasa`` with the secret of its HTTP API taken from the environment, never from argv.

    python -m bot.launch run --model … --enable-api …      (in Rasa's environment, PYTHONPATH = project root)

Rasa 3.6 takes its API credentials only as command-line options (``--auth-token``, ``--jwt-secret``),
and everything on a command line is visible to every local user (``ps``, /proc/<pid>/cmdline). This
launcher reads ``ASSISTANT_RASA_API_TOKEN`` from its environment and adds ``--jwt-secret <it>
--jwt-method HS256`` to Rasa's arguments inside this process only: the process's own command line
(what ``ps`` shows) stays as it was started. The API then takes only JWTs signed with that secret,
sent as ``Authorization: Bearer …`` (never a URL query); see ``service.rasa_api``.

It also sets how long Rasa waits for the action server (``ASSISTANT_ACTION_TIMEOUT`` seconds; Rasa's
own, fixed default is 300): after that the user gets the fallback message (bot/connectors/fallback.py),
and the turn is stored and rewound as for an action server that is down (``timeouts_fail_like_errors``).

It checks the action server's replies against Rasa's response schema compiled once
(``compiled_action_validation``): Rasa 3.6 calls ``jsonschema.validate`` on every reply, which
re-checks the schema itself each time (16 ms of CPU per call here, two calls per message; 0.5 ms
compiled). The same replies pass and fail, with the same message.

And it loads the model's TensorFlow parts without tracing a training step (bot/fastload.py: about
4× faster, same predictions) unless ``ASSISTANT_RASA_FAST_LOAD=false``.
"""

from __future__ import annotations

import os
import sys

SECRET_VARIABLE = "ASSISTANT_RASA_API_TOKEN"
REFUSED_OPTIONS = ("-t", "--auth-token", "--jwt-secret", "--jwt-private-key")
TIMEOUT_VARIABLE = "ASSISTANT_ACTION_TIMEOUT"
FAST_LOAD_VARIABLE = "ASSISTANT_RASA_FAST_LOAD"


def rasa_argv(args: list[str], environ: dict[str, str]) -> list[str]:
    """Rasa's arguments: ``args`` plus the API secret from ``environ`` (refuses secrets on argv)."""
    for arg in args:
        if arg.split("=", 1)[0] in REFUSED_OPTIONS:
            raise SystemExit(f"{arg.split('=', 1)[0]} on the command line is visible to every local user; "
                             f"set {SECRET_VARIABLE} in the environment instead.")
    secret = environ.get(SECRET_VARIABLE, "")
    if "--enable-api" in args:
        if len(secret) < 16:
            raise SystemExit(f"--enable-api needs {SECRET_VARIABLE} (16+ characters) in the environment: "
                             "Rasa's HTTP API must not run without authentication.")
        # "--jwt-secret=<it>", one argument: a generated secret may start with "-" (token_urlsafe, 1 in 32),
        # which argparse would read as an option and Rasa would not start ("expected one argument").
        args = [*args, f"--jwt-secret={secret}", "--jwt-method", "HS256"]
    return ["rasa", *args]


def action_timeout(environ: dict[str, str]) -> float | None:
    """Seconds to wait for the action server, from ``environ`` (None: Rasa's default)."""
    value = environ.get(TIMEOUT_VARIABLE, "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise SystemExit(f"{TIMEOUT_VARIABLE} must be a number of seconds, not {value!r}") from None
    if not 0 < seconds <= 3600:
        raise SystemExit(f"{TIMEOUT_VARIABLE} must be between 0 and 3600 seconds")
    return seconds


def fast_load(environ: dict[str, str]) -> bool:
    """Whether to load the TensorFlow models without Rasa's one-example training step (bot/fastload.py)."""
    value = environ.get(FAST_LOAD_VARIABLE, "true").strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no", ""):
        raise SystemExit(f"{FAST_LOAD_VARIABLE} must be true or false, not {value!r}")
    return value in ("true", "1", "yes", "")


def timeouts_fail_like_errors() -> None:
    """Make a timed-out action call fail the way a refused one does.

    Rasa 3.6's ``RemoteAction.run`` turns connection and HTTP errors into ``RasaException``, which the
    processor handles (the turn is stored, the fallback rewinds it: bot/connectors/fallback.py), but
    not ``asyncio.TimeoutError``: a hung action server made ``handle_message`` raise before the
    tracker was saved, and the user's message vanished from the conversation (found by
    tests/test_supervision.py, the SIGSTOPped action server).
    """
    import asyncio

    from rasa.core.actions.action import RemoteAction
    from rasa.shared.exceptions import RasaException

    run = RemoteAction.run
    if getattr(run, "assistant_timeouts", False):
        return

    async def run_with_timeout_as_error(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return await run(self, *args, **kwargs)
        except asyncio.TimeoutError as exc:
            raise RasaException(f"Failed to execute custom action '{self.name()}': the action server did not "
                                f"answer within {action_timeout(dict(os.environ)) or 'the timeout'} s") from exc

    run_with_timeout_as_error.assistant_timeouts = True  # type: ignore[attr-defined]
    RemoteAction.run = run_with_timeout_as_error


VALIDATION_HINT = ("Failed to validate Action server response from API, make sure your response from the Action "
                   "endpoint is valid. For more information about the format visit {docs}/custom-actions")


def compiled_action_validation() -> None:
    """Validate action server replies with a validator built once instead of ``jsonschema.validate`` per call."""
    from jsonschema import exceptions, validators
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    if getattr(RemoteAction._validate_action_result, "assistant_compiled", False):
        return
    compiled: dict[type, object] = {}

    def validate_action_result(self, result):  # type: ignore[no-untyped-def]
        validator = compiled.get(type(self))
        if validator is None:
            schema = self.action_response_format_spec()
            cls = validators.validator_for(schema)
            cls.check_schema(schema)  # what jsonschema.validate does first, now once
            validator = compiled[type(self)] = cls(schema)
        error = exceptions.best_match(validator.iter_errors(result))  # type: ignore[attr-defined]
        if error is None:
            return True
        error.message += ". " + VALIDATION_HINT.format(docs=DOCS_BASE_URL)
        raise error

    validate_action_result.assistant_compiled = True  # type: ignore[attr-defined]
    RemoteAction._validate_action_result = validate_action_result


def main() -> None:
    sys.argv = rasa_argv(sys.argv[1:], dict(os.environ))
    if fast_load(dict(os.environ)):
        from bot import fastload

        fastload.install()
    timeout = action_timeout(dict(os.environ))
    if timeout is not None:
        import rasa.core.actions.action as rasa_action

        rasa_action.DEFAULT_REQUEST_TIMEOUT = timeout  # what RemoteAction passes to each request
    timeouts_fail_like_errors()
    compiled_action_validation()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
