"""Worker-present sessions over Telegram (`/with CASE FLOW`): the worker hands their phone to a
child or family member. While the session runs, the device is theirs: their words are screened
and go to their session (never to a rehearsal the worker left open), and nothing of the
worker's own answers them (/ack, /language, /rehearse, /reminders); /stop ends the session."""

import pytest

from bot.access import Access
from bot.config import Config
from bot.conversation import ConversationService
from bot.messages import msg
from bot.reading import Reading
from bot.respondent import described
from bot.safeguarding import SafeguardingConfig
from bot.store import Store
from bot.testing.telegram import running_bot

LEAD, WORKER, FAMILY = 960, 961, 962
HOME = "my dad hits me and I am scared to go home"


@pytest.fixture(scope="module")
def safeguarding():
    return SafeguardingConfig.load()


def _world(db, library, safeguarding):
    store = Store(db)
    service = ConversationService(store, library, safeguarding=safeguarding)
    access = Access(store, library, Config(roles={"practitioner": [WORKER]}, leads=[LEAD]))
    access.seed()
    return service, access


def _texts(messages) -> list[str]:
    return [m.text or "" for m in messages]


async def _session(h):
    pid = await h.frontend.db(h.service.person, f"tg:{WORKER}")
    return await h.frontend.db(h.service.active, pid)


async def test_with_is_refused_while_a_rehearsal_is_open(tmp_path, library, safeguarding):
    service, access = _world(tmp_path / "r.db", library, safeguarding)
    async with running_bot(service, access=access) as h:
        await h.say(WORKER, "/rehearse harmer-lunch-queue")
        await h.say(WORKER, "4")  # the rehearsal is under way; the worker leaves it open
        said = _texts(await h.say(WORKER, "/with CASE-1 three-houses"))
        assert said == [msg("staff.with_rehearsing")]
        assert await _session(h) is None
        # once the rehearsal is stopped, the session starts
        await h.say(WORKER, "/cancel")
        said = _texts(await h.say(WORKER, "/with CASE-1 three-houses"))
        assert said[0] == msg("staff.with_started", ref="CASE-1", who=described("child"))
        help_ = "\n".join(_texts(await h.say(WORKER, HOME)))
        assert "Childline" in help_
    [alert] = service.store.alerts()
    assert HOME in alert["words"]


async def test_a_childs_words_never_go_to_a_rehearsal_left_open(tmp_path, library, safeguarding):
    """A rehearsal open beside a running session (e.g. both from before the /with check): the
    words typed on the device go to the session, screened, and the lead's alert is raised."""
    service, access = _world(tmp_path / "o.db", library, safeguarding)
    async with running_bot(service, access=access) as h:
        await h.say(WORKER, "/rehearse harmer-lunch-queue")
        await h.say(WORKER, "4")
        worker = await h.frontend.db(service.person, f"tg:{WORKER}")

        def start(person_id, flow, case_id, who, present_id):
            return service.start(person_id, flow, input_key="direct", frontend="telegram", chat_id=str(WORKER),
                                 case_id=case_id, respondent=who, present_id=present_id).conversation_id

        conv = await h.frontend.db(access.start_with, f"tg:{WORKER}", "CASE-2", "three-houses", start)
        help_ = "\n".join(_texts(await h.say(WORKER, HOME)))
        assert "Childline" in help_ and "0800 1111" in help_
        [alert] = service.store.alerts()
        assert alert["conversation_id"] == conv and HOME in alert["words"]
        rehearsal = service.store.active_rehearsal(worker)
        assert rehearsal is not None
        assert HOME not in "\n".join(line["text"] for line in service.store.transcript(rehearsal.id))


async def test_the_workers_own_commands_do_not_answer_during_a_session(tmp_path, library, safeguarding):
    service, access = _world(tmp_path / "c.db", library, safeguarding)
    async with running_bot(service, access=access, reading=Reading(service.store, access, leads=[LEAD])) as h:
        await h.say(WORKER, "/with CASE-3 three-houses")
        for command in ("/ack 1", "/language", "/rehearse harmer-lunch-queue", "/reminders", "/hint", "/end",
                        "/start somecode", "/cases"):
            assert _texts(await h.say(WORKER, command)) == [msg("staff.with_in_progress")], command
        assert service.store.active_rehearsal(await h.frontend.db(service.person, f"tg:{WORKER}")) is None
        session = await _session(h)
        assert session is not None and session.flow_id == "three-houses"


async def test_stop_typed_as_a_command_ends_the_session_not_the_workers_reminders(tmp_path, library, safeguarding):
    service, access = _world(tmp_path / "s.db", library, safeguarding)
    async with running_bot(service, access=access, reading=Reading(service.store, access, leads=[LEAD])) as h:
        await h.say(WORKER, "/with CASE-4 three-houses")
        said = _texts(await h.say(WORKER, "/stop"))
        assert msg("worker_present.ended") in "\n".join(said)
        assert await _session(h) is None
        worker = await h.frontend.db(service.person, f"tg:{WORKER}")
        assert service.store.opted_out(worker) == set()
        # afterwards /stop is the worker's own again
        said = _texts(await h.say(WORKER, "/stop"))
        assert said[0].startswith(msg("schedule.stopped"))
        assert service.store.opted_out(worker) == {"*"}


async def test_stop_ends_the_session_without_reminders_installed(tmp_path, library, safeguarding):
    service, access = _world(tmp_path / "n.db", library, safeguarding)
    async with running_bot(service, access=access) as h:
        await h.say(WORKER, "/with CASE-5 three-houses")
        said = _texts(await h.say(WORKER, "/stop"))
        assert msg("worker_present.ended") in "\n".join(said)
        assert await _session(h) is None
