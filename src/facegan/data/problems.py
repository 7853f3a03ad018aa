"""What can be wrong with one input file, named the same way everywhere.

A bad file is skipped, never fatal: each one gets a *kind* (a stable word for
JSON and tests) and a *reason* (one short line for people). `describe_error`
turns whatever opening or decoding raised into that pair, and `display_name`
makes any file name safe to print, log or put in JSON.
"""

from __future__ import annotations

import errno
import re
import unicodedata
import zipfile

from PIL import Image

from facegan.errors import UserError

# Kinds of bad files, as they appear in reports and in `inspect-data --json`.
EMPTY = "empty"  # zero bytes
NOT_IMAGE = "not_image"  # Pillow cannot identify the content
CORRUPT = "corrupt"  # identified, but the data does not decode
TRUNCATED = "truncated"  # the file ends before the image does
TOO_MANY_PIXELS = "too_many_pixels"  # above data.max_pixels: a decompression bomb guard
TOO_SMALL = "too_small"  # short side below data.min_size
TOO_LARGE = "too_large"  # more bytes than facegan reads for one image
UNREADABLE = "unreadable"  # permission denied or an I/O error
SYMLINK_LOOP = "symlink_loop"  # a link that points back at itself or a parent
BROKEN_LINK = "broken_link"  # a link to nothing (or the file vanished)
NOT_A_FILE = "not_a_file"  # a FIFO, socket or device: reading it could block
REPEATED_FOLDER = "repeated_folder"  # a second link to a folder already scanned
UNSAFE_PATH = "unsafe_path"  # a zip entry that would escape its folder (zip-slip)
ZIP_BOMB = "zip_bomb"  # a zip entry that inflates beyond the limits
OUTSIDE_LINK = "outside_link"  # a link out of the data folder, with data.links = inside

KINDS = (
    EMPTY,
    NOT_IMAGE,
    CORRUPT,
    TRUNCATED,
    TOO_MANY_PIXELS,
    TOO_SMALL,
    TOO_LARGE,
    UNREADABLE,
    SYMLINK_LOOP,
    BROKEN_LINK,
    NOT_A_FILE,
    REPEATED_FOLDER,
    UNSAFE_PATH,
    ZIP_BOMB,
    OUTSIDE_LINK,
)


class DataError(UserError, ValueError):
    """The data the user pointed at cannot be used."""


class BadFile(Exception):
    """One input file cannot be used; raised while reading or checking it.

    Attributes:
        kind: one of `KINDS`.
        reason: one line for people, naming what was wrong and what is allowed.
    """

    def __init__(self, kind: str, reason: str):
        assert kind in KINDS, f"unknown bad-file kind {kind!r}"
        super().__init__(reason)
        self.kind, self.reason = kind, reason


def describe_error(error: BaseException) -> tuple[str, str]:
    """The (kind, reason) of an exception raised while reading or decoding one file."""
    if isinstance(error, BadFile):
        return error.kind, error.reason
    message = " ".join(str(error).split())  # one line, whatever the library wrote
    if isinstance(error, Image.DecompressionBombError):
        counts = [int(n) for n in re.findall(r"\d+", message)]
        if len(counts) >= 2:  # "Image size (N pixels) exceeds limit of M pixels, ..."
            message = f"{counts[0]:,} pixels, above Pillow's own limit of {counts[1]:,}"
        return TOO_MANY_PIXELS, f"{message}; refused before decoding (a decompression bomb?)"
    if isinstance(error, Image.UnidentifiedImageError):
        return NOT_IMAGE, "not an image Pillow can identify (wrong content or damaged header)"
    if isinstance(error, PermissionError):
        return UNREADABLE, "permission denied"
    if isinstance(error, FileNotFoundError):
        return BROKEN_LINK, "not found (a broken symbolic link, or deleted during the scan)"
    if isinstance(error, OSError) and error.errno == errno.ELOOP:
        return SYMLINK_LOOP, "symbolic link loop (the link resolves to itself)"
    if isinstance(error, zipfile.BadZipFile):
        return CORRUPT, f"damaged zip entry ({message})"
    if isinstance(error, OSError) and "truncated" in message:
        return TRUNCATED, f"file ends early ({message})"
    if isinstance(error, OSError) and error.errno is not None:
        return UNREADABLE, f"cannot read it ({message})"
    if isinstance(error, MemoryError):
        return CORRUPT, "ran out of memory while decoding it"
    return (
        CORRUPT,
        f"cannot decode it ({type(error).__name__}: {message})"
        if message
        else f"cannot decode it ({type(error).__name__})",
    )


def display_name(name: str) -> str:
    """`name` made safe to print, log or store as JSON text.

    A file name that is not valid UTF-8 reaches Python with its bad bytes as
    lone surrogates (os.fsdecode); they become ``\\xff``-style escapes here.
    Control and other invisible characters (a newline, a right-to-left
    override) become ``\\n``/``\\u202e`` escapes, so one name is one visible line.
    """
    try:
        text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no byte produced
        text = name.encode("utf-8", "backslashreplace").decode("utf-8")
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    if ch in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch]
    code = ord(ch)
    if unicodedata.category(ch) == "Zs":  # non-breaking and other visible spaces
        return ch
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )
