"""Reading one zip entry with memory bounded by what its header declares.

`zipfile` trusts the header's uncompressed size: it stops returning bytes
there, but it inflates in steps as large as the read it is asked for, so an
entry whose header says 1 KB while its deflate stream holds 500 MB is inflated
a few hundred MB at a time before a CRC error ends it. Here a stored or
deflated entry's raw bytes are read from its local header on, in small
pieces, and inflated with an output cap of what is still allowed: an entry
that would inflate past its declared size (or past `limit`) is refused as a
zip bomb after at most one piece more than it declared. Other methods (bzip2,
LZMA, rare in image zips) go through `zipfile`, in small reads.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from typing import BinaryIO

from facegan.data import problems as bad
from facegan.data.problems import BadFile

PIECE = 64 * 1024  # raw bytes read, and most bytes inflated, per step
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # the 30 bytes before the name and extra field


def read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """The uncompressed bytes of `info`, at most min(declared size, `limit`) of them.

    Raises:
        BadFile: (ZIP_BOMB) the data inflates past the declared size or `limit`;
            (CORRUPT) the stream ends early or its CRC does not match.
    """
    allowed = min(info.file_size, limit)
    if (
        info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1
    ):  # encrypted: zipfile says so in its own words
        return _through_zipfile(archive, info, allowed)
    raw = archive.fp
    raw.seek(info.header_offset)
    fields = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
    if fields[0] != b"PK\x03\x04":
        raise BadFile(bad.CORRUPT, "bad local header in zip")
    raw.seek(info.header_offset + _LOCAL_HEADER.size + fields[10] + fields[11])
    if info.compress_type == zipfile.ZIP_STORED:
        data = _stored(raw, info, allowed)
    else:
        data = _inflated(raw, info, allowed)
    if zlib.crc32(data) != info.CRC:
        raise BadFile(bad.CORRUPT, "CRC-32 of the zip entry does not match")
    return data


def _stored(raw: BinaryIO, info: zipfile.ZipInfo, allowed: int) -> bytes:
    if info.compress_size != info.file_size or info.file_size > allowed:
        raise BadFile(
            bad.ZIP_BOMB,
            f"stored entry of {info.compress_size} bytes declares {info.file_size}; refused",
        )
    data = raw.read(info.compress_size)
    if len(data) != info.compress_size:
        raise BadFile(bad.CORRUPT, "zip entry ends early")
    return data


def _inflated(raw: BinaryIO, info: zipfile.ZipInfo, allowed: int) -> bytes:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    left = info.compress_size
    pending = b""
    while not inflater.eof:
        if not pending:
            if left <= 0:
                raise BadFile(bad.CORRUPT, "zip entry ends early")
            pending = raw.read(min(PIECE, left))
            if not pending:
                raise BadFile(bad.CORRUPT, "zip entry ends early")
            left -= len(pending)
        try:
            # at most one byte past what is allowed: enough to know it is too much
            chunk = inflater.decompress(pending, min(PIECE, allowed + 1 - len(out)))
        except zlib.error as err:
            raise BadFile(bad.CORRUPT, f"zip entry does not inflate: {err}") from None
        pending = inflater.unconsumed_tail
        out += chunk
        if len(out) > allowed:
            raise BadFile(
                bad.ZIP_BOMB,
                f"inflates past the {allowed} bytes its header declares (a zip bomb?); refused",
            )
    if len(out) != info.file_size:
        raise BadFile(
            bad.CORRUPT,
            f"zip entry inflates to {len(out)} bytes, its header declares {info.file_size}",
        )
    return bytes(out)


def _through_zipfile(archive: zipfile.ZipFile, info: zipfile.ZipInfo, allowed: int) -> bytes:
    out = bytearray()
    with archive.open(info) as entry:
        while piece := entry.read(min(PIECE, allowed + 1 - len(out))):
            out += piece
            if len(out) > allowed:
                raise BadFile(bad.ZIP_BOMB, f"inflates past {allowed} bytes; refused")
    return bytes(out)
