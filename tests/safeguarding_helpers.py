"""Shared by the safeguarding tests: a deployment's own lexicon file (the override that both
test_safeguarding_alert.py and test_safeguarding_classifier.py check the nets never second-guess).

Its words are made up ("blorked", "snoffled") so that no shipped rule matches them: a tier
they get can only come from this file.
"""

from __future__ import annotations

from bot.safeguarding import SafeguardingConfig

OVERRIDE = """\
concerns:
  physical_harm:
    phrases:
      - blorked me
    review:
      - snoffled me
contexts:
  lessons_and_media:
    within: 4
    phrases:
      - in pshe
"""


def override_config(net) -> SafeguardingConfig:
    """The packaged lexicon with :data:`OVERRIDE` merged on top, as a deployment's
    ``local.yaml``, and ``net`` (a stand-in classifier) in place of the shipped model."""
    config = SafeguardingConfig.from_text(OVERRIDE, "local.yaml", classifier=False)
    config._classifier = net
    return config
