"""Rasa input channels: glue between the outside wire formats and the assistant."""
