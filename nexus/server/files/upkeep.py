"""Files in `nexus-server check`, `backup` and `migrate`: the content every
record names is there and whole, and goes with a copy of the store.

They read a store's files directory and change nothing in it: content
that no record names (an upload a crash cut short) is counted, not
removed; the server removes it when it starts.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from nexus.server.files.blobs import Blobs
from nexus.server.model import Model

READ = 1 << 20  # bytes hashed at a time


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(READ):
            sha.update(chunk)
    return sha.hexdigest()


def verify(model: Model, root: Path) -> tuple[str, list[str]]:
    """A line saying what the files directory holds, and what is wrong with
    it: content a record names that is missing, or whose bytes no longer
    hash to its name."""
    held = {file.sha for file in model.files.values()}
    size = sum(file.size for file in model.files.values())
    if not root.exists():
        if not held:
            return "files: none", []
        # One problem, not one a content: most likely --data is not the server's.
        return f"files: {len(model.files):,}", [f"{root} is missing (is --data the server's?)"]
    blobs = Blobs(root)
    problems = []
    for sha in sorted(held):
        path = blobs.path(sha)
        if not path.exists():
            problems.append(f"content {sha} is missing")
        elif _digest(path) != sha:
            problems.append(f"content {sha} is damaged")
    spare = len(blobs.shas() - held)
    line = f"files: {len(model.files):,} ({len(held):,} contents, {size:,} bytes)"
    if spare:
        line += f"; {spare:,} contents no record names (the server removes them at start)"
    return line, problems


def export(root: Path, files: dict[str, tuple[str, str]], dest: Path) -> None:
    """Copies files (id -> (sha, name)) from the files directory `root` to
    `dest/<id>/<name>`, as the exported messages name them."""
    source = Blobs(root)
    for file_id, (sha, name) in files.items():
        folder = dest / file_id
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source.path(sha), folder / name)


def copy(model: Model, root: Path, dest: Path) -> int:
    """Copies the content (and thumbnails) every record names from the
    files directory `root` to `dest`, a new one; how many. Copies, not
    hard links: a backup must not share the bytes whose damage it guards
    against."""
    held = {file.sha for file in model.files.values()}
    if not held:
        return 0
    source, target = Blobs(root), Blobs(dest)
    dest.mkdir(mode=0o700)
    for sha in held:
        pairs = [(source.path(sha), target.path(sha))]
        if source.thumb_path(sha).exists():
            pairs.append((source.thumb_path(sha), target.thumb_path(sha)))
        for origin, copied in pairs:
            copied.parent.mkdir(mode=0o700, exist_ok=True)
            shutil.copyfile(origin, copied)
            copied.chmod(0o600)
    return len(held)
