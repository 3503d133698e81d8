"""The answering logic, free of Rasa and FastAPI: search → answer, coverage verdict, quotes,
threshold rules, texts, language, the inbox store and the payload contract channels receive.

actions/ (the rasa-sdk adapter) and service/ (FastAPI) import this package; it imports index/
and nothing above it. Nothing heavy is loaded at import time.
"""
