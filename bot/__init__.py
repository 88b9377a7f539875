"""restorative-bot: a conversation assistant for restorative practice."""

__version__ = "0.1.0"
