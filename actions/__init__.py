"""Thin rasa_sdk actions over the services in `bot/`."""
