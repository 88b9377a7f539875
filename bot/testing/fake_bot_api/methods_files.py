"""Bot API methods for files: sendDocument (uploads) and getFile."""

from __future__ import annotations

import mimetypes
import re
from typing import Any
from urllib.parse import urlsplit

from .protocol import (
    ERR_CAPTION_TOO_LONG,
    MAX_CAPTION_LENGTH,
    _bad,
)
from .records import (
    StoredDocument,
    UploadedFile,
)


class FileMethods:
    """Bot API methods for files: sendDocument (uploads) and getFile."""

    def _caption(self, params: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
        """A file's caption and its entities, checked as Telegram does (none when not given)."""
        if not params.get("caption"):
            return None, []
        return self._text(
            params.get("caption"),
            params.get("parse_mode"),
            params.get("caption_entities"),
            limit=MAX_CAPTION_LENGTH,
            too_long=ERR_CAPTION_TOO_LONG,
            empty=None,
        )

    async def _api_sendDocument(
        self, *, params: dict[str, Any], files: dict[str, UploadedFile], token: str, **_: Any
    ) -> dict[str, Any]:
        chat_id = self._sendable_chat(params)
        document = params.get("document")
        upload: UploadedFile | None = None
        if isinstance(document, str) and document.startswith("attach://"):
            upload = files.get(document[len("attach://") :])
            if upload is None:
                raise _bad("wrong file identifier/HTTP URL specified")
        elif document in (None, "") and "document" in files:
            upload = files["document"]
        caption, caption_entities = self._caption(params)
        inline, other = self._markup(params)
        reply_to = self._reply_to(chat_id, params)
        message_id = self._new_message_id(chat_id)
        if upload is not None:
            if not upload.data:
                raise _bad("file must be non-empty")
            filename = upload.filename or "document"
            mime = upload.content_type
            if not mime or mime == "application/octet-stream":
                mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            ext = "." + filename.rsplit(".", 1)[1] if "." in filename else ""
            record = self._new_file(upload.data, "documents", ext, "BQACAgIAAxkDAAI")
            stored = StoredDocument(
                chat_id, message_id, record.file_id, record.file_unique_id, filename,
                upload.data, mime, caption,
            )
        elif isinstance(document, str) and document in self._files:
            record = self._files[document]
            stored = StoredDocument(
                chat_id, message_id, record.file_id, record.file_unique_id,
                record.file_path.rsplit("/", 1)[-1], record.data,
                mimetypes.guess_type(record.file_path)[0], caption,
            )
        elif isinstance(document, str) and re.match(r"https?://", document):
            record = self._new_file(b"", "documents", "", "BQACAgIAAxkDAAI")
            name = urlsplit(document).path.rsplit("/", 1)[-1] or "document"
            stored = StoredDocument(
                chat_id, message_id, record.file_id, record.file_unique_id, name, None,
                mimetypes.guess_type(name)[0], caption, url=document,
            )
        elif document in (None, ""):
            raise _bad("there is no document in the request")
        else:
            raise _bad("wrong file identifier/HTTP URL specified")
        message = self._from_bot(
            chat_id, message_id, token, params, caption=caption, caption_entities=caption_entities,
            document=stored, inline_markup=inline, keyboard_markup=other, reply_to=reply_to,
        )
        self._store(message)
        return message.to_api()

    async def _api_sendPhoto(
        self, *, params: dict[str, Any], files: dict[str, UploadedFile], token: str, **_: Any
    ) -> dict[str, Any]:
        """An uploaded photo (PNG or JPEG), kept with its bytes; width and height read from it."""
        chat_id = self._sendable_chat(params)
        photo = params.get("photo")
        upload: UploadedFile | None = None
        if isinstance(photo, str) and photo.startswith("attach://"):
            upload = files.get(photo[len("attach://") :])
        elif photo in (None, "") and "photo" in files:
            upload = files["photo"]
        if upload is None:
            raise _bad("there is no photo in the request")
        if not upload.data:
            raise _bad("file must be non-empty")
        width, height = _image_size(upload.data)
        if not width or not height:
            raise _bad("IMAGE_PROCESS_FAILED")
        caption, caption_entities = self._caption(params)
        inline, other = self._markup(params)
        reply_to = self._reply_to(chat_id, params)
        message_id = self._new_message_id(chat_id)
        record = self._new_file(upload.data, "photos", ".png", "AgACAgIAAxkDAAI")
        stored = StoredDocument(
            chat_id, message_id, record.file_id, record.file_unique_id, upload.filename,
            upload.data, upload.content_type or "image/png", caption,
        )
        message = self._from_bot(
            chat_id, message_id, token, params, caption=caption, caption_entities=caption_entities,
            inline_markup=inline, keyboard_markup=other, reply_to=reply_to,
            extra={"photo": [{"file_id": record.file_id, "file_unique_id": record.file_unique_id,
                              "width": width, "height": height, "file_size": len(upload.data)}]},
        )
        message.photo = stored
        self._store(message)
        return message.to_api()

    async def _api_getFile(self, *, params: dict[str, Any], **_: Any) -> dict[str, Any]:
        record = self._files.get(str(params.get("file_id") or ""))
        if record is None:
            raise _bad("invalid file_id")
        return {
            "file_id": record.file_id,
            "file_unique_id": record.file_unique_id,
            "file_size": len(record.data),
            "file_path": record.file_path,
        }


def _image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG or JPEG; (0, 0) if it is neither."""
    import struct

    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return 0, 0
            marker, size = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2):
                height, width = struct.unpack(">HH", data[i + 5:i + 9])
                return width, height
            i += 2 + size
    return 0, 0
