"""Injecting user input: messages, commands, button presses, photos, stickers, voice, edits, raw updates, re-deliveries."""

from __future__ import annotations

import time
from typing import Any

from .entities import (
    _command_entities,
)
from .records import (
    StoredMessage,
    _FileRecord,
    _Pending,
)


class Injection:
    """Injecting user input: messages, commands, button presses, photos, stickers, voice, edits, raw updates, re-deliveries."""

    # --- injection ----------------------------------------------------------------------

    def inject_update(self, update: dict[str, Any]) -> int:
        """Queue an arbitrary update; assigns the next ``update_id`` and returns it."""
        update = dict(update)
        given = update.get("update_id")
        if given is not None and given <= self._last_update_id:
            raise ValueError(
                f"update_id {given} is not above the last one ({self._last_update_id})"
            )
        update_id = given if given is not None else self._last_update_id + 1
        self._last_update_id = update_id
        update["update_id"] = update_id
        self._all_updates[update_id] = update
        self._pending.append(_Pending(update))
        self._changed()
        return update_id

    def _user_message(
        self,
        user_id: int,
        *,
        first_name: str | None,
        username: str | None,
        language_code: str | None,
        reply_to_message_id: int | None = None,
        **content: Any,
    ) -> StoredMessage:
        user = self._user(user_id, first_name, username, language_code)
        reply_to = None
        if reply_to_message_id is not None:
            reply_to = self._by_id.get((user_id, reply_to_message_id))
        text = content.pop("text", None)
        entities = content.pop("entities", None) or []
        caption = content.pop("caption", None)
        message = StoredMessage(
            chat_id=user_id,
            message_id=self._new_message_id(user_id),
            from_bot=False,
            date=int(time.time()),
            sender=dict(user),
            chat=self._chat(user_id),
            text=text,
            entities=entities,
            caption=caption,
            extra=content,
            reply_to=reply_to,
        )
        return self._store(message)

    def inject_message(
        self,
        user_id: int,
        text: str,
        *,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        entities: list[dict[str, Any]] | None = None,
        reply_to_message_id: int | None = None,
    ) -> int:
        """A user sends ``text`` in their private chat; returns the update_id.

        ``first_name``/``username``/``language_code`` update the user's profile; left at
        None they keep the previous values (a new user is "Test", language "en").

        Like the real server, ``/commands`` get ``bot_command`` entities unless ``entities``
        is given.
        """
        if entities is None:
            entities = _command_entities(text)
        message = self._user_message(
            user_id,
            first_name=first_name,
            username=username,
            language_code=language_code,
            reply_to_message_id=reply_to_message_id,
            text=text,
            entities=entities,
        )
        return self.inject_update({"message": message.to_api()})

    def inject_command(
        self, user_id: int, command: str, args: str | None = None, **kwargs: Any
    ) -> int:
        """``inject_command(1, "start", "abc")`` sends "/start abc" with a bot_command entity."""
        text = "/" + command.lstrip("/")
        if args:
            text += f" {args}"
        return self.inject_message(user_id, text, **kwargs)

    def inject_edited_message(self, user_id: int, message_id: int, text: str) -> int:
        """The user edits their earlier text message (or the caption of a picture or file:
        what Telegram lets them edit there); emits ``edited_message``."""
        message = self._by_id.get((user_id, message_id))
        if message is None or message.from_bot:
            raise KeyError(f"no user message {message_id} in chat {user_id}")
        message.history.append(message._snapshot())  # noqa: SLF001
        if message.text is None and message.caption is not None:
            message.caption = text
        else:
            message.text = text
            message.entities = _command_entities(text)
        message.edit_date = int(time.time())
        return self.inject_update({"edited_message": message.to_api()})

    def _new_file(self, data: bytes, folder: str, ext: str, prefix: str) -> _FileRecord:
        self._file_counter += 1
        n = self._file_counter
        record = _FileRecord(
            file_id=f"{prefix}{n:08d}FakeFileId",
            file_unique_id=f"AgAD{n:06d}",
            data=data,
            file_path=f"{folder}/file_{n}{ext}",
        )
        self._files[record.file_id] = record
        return record

    def inject_photo(
        self,
        user_id: int,
        *,
        caption: str | None = None,
        data: bytes | None = None,
        width: int = 1280,
        height: int = 720,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        media_group_id: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> int:
        """The user sends a photo (two PhotoSizes, downloadable via getFile); with
        ``media_group_id``, one picture of an album (Telegram sends each as its own message);
        with ``reply_to_message_id``, as a reply to that message."""
        data = data if data is not None else b"\xff\xd8\xff\xe0fake-jpeg" + bytes(64)
        thumb = self._new_file(data[:32], "photos", ".jpg", "AgACAgIAAxkBAAI")
        full = self._new_file(data, "photos", ".jpg", "AgACAgIAAxkBAAI")
        scale = max(width, height) / 90 or 1
        sizes = [
            {
                "file_id": thumb.file_id,
                "file_unique_id": thumb.file_unique_id,
                "width": max(1, int(width / scale)),
                "height": max(1, int(height / scale)),
                "file_size": len(thumb.data),
            },
            {
                "file_id": full.file_id,
                "file_unique_id": full.file_unique_id,
                "width": width,
                "height": height,
                "file_size": len(full.data),
            },
        ]
        content: dict[str, Any] = {"photo": sizes}
        if caption is not None:
            content["caption"] = caption
        if media_group_id is not None:
            content["media_group_id"] = media_group_id
        message = self._user_message(
            user_id,
            first_name=first_name,
            username=username,
            language_code=language_code,
            reply_to_message_id=reply_to_message_id,
            **content,
        )
        return self.inject_update({"message": message.to_api()})

    def inject_sticker(
        self,
        user_id: int,
        *,
        emoji: str = "👍",
        set_name: str | None = "FakeStickers",
        is_animated: bool = False,
        is_video: bool = False,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> int:
        """The user sends a sticker."""
        record = self._new_file(b"RIFF-fake-webp", "stickers", ".webp", "CAACAgIAAxkBAAI")
        sticker: dict[str, Any] = {
            "file_id": record.file_id,
            "file_unique_id": record.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": is_animated,
            "is_video": is_video,
            "emoji": emoji,
            "file_size": len(record.data),
        }
        if set_name:
            sticker["set_name"] = set_name
        message = self._user_message(
            user_id,
            first_name=first_name,
            username=username,
            language_code=language_code,
            sticker=sticker,
        )
        return self.inject_update({"message": message.to_api()})

    def inject_voice(
        self,
        user_id: int,
        *,
        duration: int = 3,
        data: bytes | None = None,
        mime_type: str = "audio/ogg",
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> int:
        """The user sends a voice note (downloadable via getFile)."""
        data = data if data is not None else b"OggS-fake-voice" + bytes(64)
        record = self._new_file(data, "voice", ".oga", "AwACAgIAAxkBAAI")
        voice = {
            "file_id": record.file_id,
            "file_unique_id": record.file_unique_id,
            "duration": duration,
            "mime_type": mime_type,
            "file_size": len(data),
        }
        message = self._user_message(
            user_id,
            first_name=first_name,
            username=username,
            language_code=language_code,
            voice=voice,
        )
        return self.inject_update({"message": message.to_api()})

    def press_button(
        self,
        user_id: int,
        message_id: int,
        callback_data: str,
        *,
        force: bool = False,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> int:
        """The user presses an inline button of the bot's message; returns the update_id.

        The callback_query carries the message as currently stored. Pressing a button the
        message does not (or no longer) show raises ValueError unless ``force`` (to model a
        stale client).
        """
        message = self._by_id.get((user_id, message_id))
        if message is None or message.deleted:
            raise KeyError(f"no message {message_id} in chat {user_id}")
        if not message.from_bot:
            raise ValueError(f"message {message_id} was not sent by the bot")
        shown = [data for row in self.buttons(message) for _, data in row]
        if callback_data not in shown and not force:
            raise ValueError(
                f"message {message_id} has no button with callback_data {callback_data!r} "
                f"(shown: {shown!r}); pass force=True to simulate a stale client"
            )
        user = self._user(user_id, first_name, username, language_code)
        self._callback_counter += 1
        query_id = str(4_000_000_000_000_000_000 + self._callback_counter)
        self._callback_queries[query_id] = {
            "user_id": user_id,
            "message_id": message_id,
            "data": callback_data,
            "answered": False,
        }
        return self.inject_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": dict(user),
                    "message": message.to_api(),
                    "chat_instance": str(-(10**18) + user_id),
                    "data": callback_data,
                }
            }
        )

    def redeliver(self, update_id: int) -> int:
        """Queue an already-delivered update again (same update_id), once.

        It is served on the next getUpdates even though the bot's offset has passed it,
        then dropped when a later offset confirms it again (or after a 2xx webhook answer).
        """
        update = self._all_updates[update_id]
        for entry in self._pending:
            if entry.update_id == update_id:
                entry.redelivered, entry.served = True, False
                break
        else:
            self._pending.append(_Pending(update, redelivered=True))
            self._pending.sort(key=lambda e: e.update_id)
        self._changed()
        return update_id
