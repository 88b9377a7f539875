import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.pop("TELEGRAM_BOT_TOKEN", None)
# Encryption at rest (bot/dbkey.py): the tests, and every subprocess they start, use a key of
# their own made for this run, never the user's key file (XDG_CONFIG_HOME points at a fresh
# temporary folder too, so a test that unsets the key cannot touch ~/.config).
import base64 as _b64, tempfile as _tempfile  # noqa: E402
for _name in ("RESTORATIVE_DB_KEY_FILE", "RESTORATIVE_DB_NEW_KEY"):
    os.environ.pop(_name, None)
os.environ["RESTORATIVE_DB_KEY"] = _b64.urlsafe_b64encode(os.urandom(32)).decode()
os.environ["XDG_CONFIG_HOME"] = _tempfile.mkdtemp(prefix="rb-test-config-")


@pytest.fixture(scope="session")
def library():
    from bot.engine.library import FlowLibrary

    return FlowLibrary.load()


@pytest.fixture
def store(tmp_path):
    from bot.store import Store

    s = Store(tmp_path / "test.db")
    yield s
    s.close()


@pytest.fixture
def service(store, library):
    from bot.conversation import ConversationService

    return ConversationService(store, library)


def flow_from(text: str):
    """Load a flow from YAML text, failing the test with the linter's messages."""
    from bot.engine.loader import load_flow_text

    flow, errors = load_flow_text(text, "<test>")
    assert flow is not None, "\n".join(map(str, errors))
    return flow
