"""Custom Rasa components of the assistant (run inside Rasa's own environment)."""
