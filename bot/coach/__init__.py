"""The rehearsal coach: question labels and better wordings, from rules in YAML.

``from bot.coach import coach`` → ``coach("Why did you hit Josh?").suggestion``.
"""

from bot.coach.engine import Coach, Coaching, coach
from bot.coach.rules import DEFAULT_RULES, LABELS, MISTAKES, PRACTICE, RulesError, check_rules_file, load_rules

__all__ = ["Coach", "Coaching", "coach", "load_rules", "check_rules_file", "RulesError", "DEFAULT_RULES",
           "LABELS", "MISTAKES", "PRACTICE"]
