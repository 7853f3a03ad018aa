"""Walking a data folder: image files, ignored files and the entries refused while listing.

Links to folders are followed but never into a loop; with `links = "inside"`, a
link that leaves the data folder is reported and left out (`LINK_RULES`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from facegan.data import problems as bad
from facegan.data.problems import DataError, describe_error, display_name

# Extensions we try to decode. Anything else in a folder is ignored, not an error
# (a README or a .DS_Store beside the photos is normal).
IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".bmp",
        ".gif",
        ".webp",
        ".pgm",
        ".ppm",
        ".pbm",
        ".pnm",
        ".tif",
        ".tiff",
    }
)

# (name, kind, reason): an entry refused while listing, never opened.
Problem = tuple[str, str, str]


class Listing:
    """What walking a folder found."""

    def __init__(self) -> None:
        self.images: list[str] = []
        self.stats: dict[str, tuple[int, int]] = {}  # name -> (size, mtime_ns)
        self.ignored: list[str] = []
        self.problems: list[Problem] = []
        self.outside: list[tuple[str, str]] = []  # (name, resolved target) of outward links


LINK_RULES = ("follow", "inside")


def list_folder(root: Path, links: str = "follow") -> Listing:
    """Walks `root`, following links to folders but never into a loop.

    Raises:
        DataError: `root` itself cannot be listed.
    """
    found = Listing()
    try:
        top = os.stat(root)
    except OSError as err:
        raise DataError(
            f"`data.source` {display_name(str(root))!r} cannot be read: {describe_error(err)[1]}"
        ) from None
    inside_of = os.path.realpath(root)
    visited = {(top.st_dev, top.st_ino)}
    # (path, name prefix, identities of the folders on the way down from root)
    pending = [(str(root), "", frozenset(visited))]
    while pending:
        path, prefix, ancestors = pending.pop()
        try:
            with os.scandir(path) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as err:
            if not prefix:
                raise DataError(
                    f"`data.source` {display_name(str(root))!r} cannot be listed: "
                    f"{describe_error(err)[1]}"
                ) from None
            kind, reason = describe_error(err)
            found.problems.append((prefix, kind, f"folder not scanned: {reason}"))
            continue
        for entry in entries:
            name = prefix + entry.name
            if entry.is_symlink() and not _link_allowed(entry, name, inside_of, links, found):
                continue
            if _is_dir(entry):
                _visit_folder(entry, name, ancestors, visited, pending, found)
            elif Path(entry.name).suffix.lower() not in IMAGE_EXTENSIONS:
                found.ignored.append(name)
            else:
                _add_file(entry, name, found)
    return found


def _link_allowed(entry: os.DirEntry, name: str, root: str, links: str, found: Listing) -> bool:
    """Records a link that leaves the data folder; False when `links` says not to follow it."""
    target = os.path.realpath(entry.path)
    if target == root or target.startswith(root.rstrip(os.sep) + os.sep):
        return True
    if links == "inside":
        found.problems.append(
            (
                name,
                bad.OUTSIDE_LINK,
                f"symbolic link to {display_name(target)!r}, outside the data "
                f"folder; not followed (data.links = inside)",
            )
        )
        return False
    found.outside.append((name, target))
    return True


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows links; a link loop or a broken link is not a folder
    except OSError:
        return False


def _visit_folder(
    entry: os.DirEntry,
    name: str,
    ancestors: frozenset,
    visited: set,
    pending: list,
    found: Listing,
) -> None:
    try:
        info = entry.stat()
    except OSError as err:
        found.problems.append((name + os.sep, *describe_error(err)))
        return
    identity = (info.st_dev, info.st_ino)
    if identity in ancestors:
        found.problems.append(
            (
                name + os.sep,
                bad.SYMLINK_LOOP,
                "symbolic link loop: points back to a folder that contains it",
            )
        )
    elif identity in visited:
        found.problems.append(
            (
                name + os.sep,
                bad.REPEATED_FOLDER,
                "folder already scanned through another link; skipped so its "
                "images are not counted twice",
            )
        )
    else:
        visited.add(identity)
        pending.append((entry.path, name + os.sep, ancestors | {identity}))


def _add_file(entry: os.DirEntry, name: str, found: Listing) -> None:
    try:
        info = entry.stat()  # follows links: a loop or a dangling link fails here
    except OSError as err:
        found.problems.append((name, *describe_error(err)))
        return
    if not stat.S_ISREG(info.st_mode):
        found.problems.append(
            (
                name,
                bad.NOT_A_FILE,
                "not a regular file (a FIFO, socket or "
                "device); not read, since reading it could block",
            )
        )
        return
    found.images.append(name)
    found.stats[name] = (info.st_size, info.st_mtime_ns)
