"""Custom actions of the Rasa assistant (rasa-sdk) over a tested answer module.

Run the action server with ``python -m rasa_sdk --actions actions.actions``. Nothing heavy is
loaded at import time: the search index and the model load on the first action that needs them
(or at start-up through ``python -m actions``, which warms them up before serving).
"""
