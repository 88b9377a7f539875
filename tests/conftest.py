import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.pop("TELEGRAM_BOT_TOKEN", None)


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
