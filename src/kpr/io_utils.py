"""Atomic file writing: nothing kpr writes is ever left half-written, and it honours the umask.

``tempfile`` creates files 0600 and directories 0700 whatever the umask; kpr's outputs (models,
results, figures) are meant to be shared like any other file the user creates, so every temporary
file or directory that becomes an output is given the umask's permissions before it is renamed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

_UMASK_LOCK = threading.Lock()
_PROC_STATUS = "/proc/self/status"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def current_umask() -> int:
    """The process umask, read without changing it where ``/proc`` tells it (Linux ≥ 4.7)."""
    with contextlib.suppress(OSError, ValueError), open(_PROC_STATUS, encoding="ascii") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _UMASK_LOCK:
        # os.umask can only be read by setting it: a restrictive value in the meantime means a
        # file another thread creates during the round trip is at worst more private.
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def make_temp_dir(parent: str | os.PathLike[str], prefix: str) -> Path:
    """``mkdtemp`` in ``parent``, with the permissions a new directory gets (0o777 & ~umask)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(path, 0o777 & ~current_umask())
    return path


@contextlib.contextmanager
def naming_errors(path: str | os.PathLike[str]) -> Iterator[None]:
    """Re-raise an ``OSError`` of the block as one about ``path``: the file the user asked for,
    not the random temporary name next to it."""
    try:
        yield
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, os.fspath(path)) from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary file lives in the destination directory so the final ``os.replace`` is atomic.
    It gets the permissions of the file it replaces, or those of a new file (0o666 & ~umask),
    set again after the block because some writers replace the file (safetensors' ``save_file``
    recreates it 0600 whatever the umask).
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(dest.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~current_umask()
    with naming_errors(dest):
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, mode)
        yield tmp_path
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, dest)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def exchange_paths(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Atomically swap two existing paths (files or directories) on the same file system.

    Uses Linux's ``renameat2(RENAME_EXCHANGE)``: at every instant both names exist. Returns
    ``False``, changing nothing, where the C library, kernel or file system cannot do it.
    """
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), os.fspath(a), None, os.fspath(b))


def replace_path(new: Path, target: Path) -> Path:
    """Put ``new`` at ``target`` (which exists); return where the old ``target`` now is.

    Atomic where :func:`exchange_paths` works. Elsewhere the old target is renamed aside first,
    and renamed back if ``new`` cannot take its place; the caller removes the returned path.
    """
    if exchange_paths(new, target):
        return new
    aside = new.with_name(new.name + ".old")
    os.rename(target, aside)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(aside, target)
        raise
    return aside
