"""Upload file names and types, and the upload directory's readiness check."""

import os
import re
import unicodedata
from pathlib import Path

import anyio

_UNSAFE_FILENAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_FILENAME_LENGTH = 255


def sanitize_filename(filename: str | None) -> str:
    """Keep only the last path segment, in letters, digits, `.`, `_` and `-`."""
    name = unicodedata.normalize("NFKD", filename or "")
    name = name.encode("ascii", "ignore").decode("ascii")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_FILENAME_CHARACTERS.sub("_", name).strip("._")
    return name[-_MAX_FILENAME_LENGTH:] or "upload"


def media_type(content_type: str | None) -> str:
    """The bare media type of a `Content-Type`: `Text/Plain; charset=utf-8` -> `text/plain`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_writable_directory(directory: Path) -> bool:
    return directory.is_dir() and os.access(directory, os.W_OK)


async def check_upload_directory(directory: Path) -> None:
    """Readiness check: the upload directory exists and is writable."""
    if not await anyio.to_thread.run_sync(_is_writable_directory, directory):
        msg = f"Upload directory {directory} is missing or not writable"
        raise NotADirectoryError(msg)
