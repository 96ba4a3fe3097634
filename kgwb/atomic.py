"""The one writer of every artifact kgwb saves, so that nothing is half-written and nothing
earlier is lost.

Files: :func:`atomic_file` yields a temporary sibling path (``.NAME.tmp-PID-N``) for any writer
(``to_parquet``, ``save_file``, ``save_pretrained`` ...); only when the writer returns is the file
flushed to disk and moved over ``NAME`` with :func:`os.replace`.  :func:`write_text`,
:func:`write_bytes` and :func:`write_json` are the common cases.

Folders: :func:`output_dir` yields the folder a stage writes into.  A new folder is written in
place (a run that is killed there can be resumed); an existing result is replaced only with
``overwrite=True``, and then the new one is written into ``.NAME.tmp-PID`` and swapped in as a
whole when complete (old folder renamed away, new one renamed in, old one deleted), so a full
disk, a kill or an exception leaves the previous result as it was.  A folder that is not a kgwb
output (no :data:`MARKER` and none of the stage's own manifest files) is never replaced.  A
mount point cannot be renamed: there the new result is staged inside it and its entries swapped.

Leftovers of an interrupted write (``.NAME.tmp-*``, ``.NAME.old-*``, ``.NAME.building-*`` of
processes no longer running) are removed the next time NAME is written; a folder caught between
the two renames of a swap is restored from its ``.old-`` copy.

The rules, as the command line states them: writing over an existing run or dataset needs
``--overwrite`` (or ``--resume`` for training), and an output equal to, inside or containing an
input is refused (:func:`check_output_not_input`).  A future ``Result.save(run)`` is one
:func:`output_dir` block holding one :func:`atomic_file` per artifact, the manifest last.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from kgwb.errors import KgwbError, OutputError, WriteError

#: written first into every folder kgwb creates, so it can later be recognised as replaceable
MARKER = ".kgwb-output"
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old|building)-(?P<pid>\d+)(?:-\w+)?$")
_counter = itertools.count()


# ------------------------------------------------------------------------------------- files
def _tmp_sibling(path: Path, kind: str = "tmp") -> Path:
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{next(_counter)}")


def _fsync_file(path: Path) -> None:
    """Flush a written file to disk (where a full disk often reports itself)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _flush(tmp: Path, sync: bool) -> None:
    """The last step of every file write (the fault tests make it fail like a full disk)."""
    if sync:
        _fsync_file(tmp)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems do not sync folders
        pass
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _as_write_error(err: BaseException, path: Path) -> BaseException:
    """OSError keeps its type but names ``path``; a library's own error becomes a WriteError."""
    if isinstance(err, KgwbError):
        return err
    if isinstance(err, OSError):
        if err.filename is None:  # e.g. pyarrow's: name the file being written
            return OSError(err.errno, err.strerror or str(err), str(path))
        return err
    if isinstance(err, Exception):
        note = "" if "no space left" in str(err).lower() else _space_note(path)
        return WriteError(f"{path}: cannot write: {err}{note}")
    return err


def _space_note(path: Path) -> str:
    """Libraries that hide the OSError of a full disk get the likely cause added."""
    for folder in (path.parent, *path.parents):
        if folder.is_dir():
            try:
                free = shutil.disk_usage(folder).free
            except OSError:
                return ""
            return " (no space left on the device)" if free < (1 << 20) else ""
    return ""


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, sync: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; it replaces ``path`` only on success.

    On any error the temporary file is removed and ``path`` keeps its earlier content.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(final)
    tmp = _tmp_sibling(final)
    try:
        yield tmp
        if not tmp.exists():
            raise WriteError(f"{final}: the writer produced no file")
        _flush(tmp, sync)
        os.replace(tmp, final)
    except BaseException as err:
        _remove(tmp)
        converted = _as_write_error(err, final)
        if converted is err:
            raise
        raise converted from err
    if sync:
        _fsync_dir(final.parent)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int = 2, **kwargs: Any) -> Path:
    """``obj`` as JSON text (``default=str``) plus a final newline, written atomically."""
    kwargs.setdefault("default", str)
    return write_text(path, json.dumps(obj, indent=indent, **kwargs) + "\n")


def write_with(path: str | os.PathLike[str], writer: Callable[[Path], Any]) -> Path:
    """``writer(tmp_path)`` then move into place, e.g. ``write_with(p, df.to_parquet)``."""
    with atomic_file(path) as tmp:
        writer(tmp)
    return Path(path)


# ----------------------------------------------------------------------------------- folders
def is_kgwb_output(path: Path, manifests: Iterable[str] = ()) -> bool:
    """True for an empty folder or one kgwb wrote (its marker, or one of ``manifests``)."""
    if not path.is_dir():
        return False
    if (path / MARKER).exists() or any((path / m).exists() for m in manifests):
        return True
    return not any(path.iterdir())


def _mark(folder: Path, kind: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / MARKER
    if not marker.exists():
        marker.write_text(json.dumps({"kind": kind}) + "\n")


def _exists_message(target: Path, kind: str, how: str) -> str:
    return f"{target}: already holds a {kind}; {how}"


@contextlib.contextmanager
def output_dir(
    path: str | os.PathLike[str],
    *,
    kind: str,
    overwrite: bool = False,
    resume: bool = False,
    manifests: Iterable[str] = (),
    flag: str = "--overwrite",
) -> Iterator[Path]:
    """Yield the folder to write the ``kind`` result into (see the module docstring).

    - ``path`` missing (or empty): written in place, created first.
    - ``resume``: the existing folder is written in place (its files each atomically).
    - ``overwrite``: the new result is staged in ``.NAME.tmp-PID`` and swapped in at the end.
    - otherwise an existing non-empty folder raises :class:`OutputError` naming ``flag``.

    ``manifests`` are files that identify an older kgwb folder of this kind (written before the
    marker existed); a non-empty folder with neither is never replaced nor written into.
    """
    target = Path(path)
    clean_leftovers(target)
    existing = check_output_dir(
        target, kind=kind, overwrite=overwrite, resume=resume, manifests=manifests, flag=flag
    )
    if not existing or resume:
        try:
            _mark(target, kind)
            yield target
        except OSError as err:
            converted = _as_write_error(err, target)
            if converted is err:
                raise
            raise converted from err
        _fsync_dir(target)
        return
    # a mount point cannot be renamed: stage inside it and swap its entries instead
    mount = os.path.ismount(target)
    if mount:
        clean_leftovers(target / "kgwb")
        work = target / f".kgwb.tmp-{os.getpid()}"
    else:
        work = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    _remove(work)
    try:
        _mark(work, kind)
        yield work
        _sync_tree(work)
        (swap_entries if mount else swap_in)(work, target)
    except BaseException as err:
        _remove(work)
        converted = _staged_error(err, work, target)
        if converted is err:
            raise
        raise converted from err


def _staged_error(err: BaseException, work: Path, target: Path) -> BaseException:
    """The error of a staged write, naming ``target`` rather than the removed staging folder."""
    if isinstance(err, OSError) and err.filename is not None:
        name = str(err.filename)
        if name.startswith(str(work)):
            inner = name[len(str(work)) :].lstrip(os.sep)
            reason = err.strerror or str(err)
            return OSError(err.errno, f"{reason} (writing {inner or 'the folder'})", str(target))
        return err
    if isinstance(err, WriteError):
        return WriteError(str(err).replace(str(work), str(target)))
    return err  # not a write failure: the stage's own error, unchanged


def check_output_dir(
    path: str | os.PathLike[str],
    *,
    kind: str,
    overwrite: bool = False,
    resume: bool = False,
    manifests: Iterable[str] = (),
    flag: str = "--overwrite",
) -> bool:
    """Raise :class:`OutputError` unless :func:`output_dir` may write there; returns whether an
    earlier result exists.  Commands call it before their work, to fail in a second."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise OutputError(f"{target}: exists and is not a folder (expected a {kind} folder)")
    existing = target.is_dir() and any(p.name != MARKER for p in target.iterdir())
    if existing and not is_kgwb_output(target, tuple(manifests)):
        raise OutputError(
            f"{target}: exists and was not written by kgwb; refusing to write a {kind} into it"
            " (choose a new folder)"
        )
    if existing and not (overwrite or resume):
        how = f"pass {flag} to replace it"
        if kind == "training run":
            how += " or --resume to continue it"
        raise OutputError(_exists_message(target, kind, how))
    return existing


def _sync_tree(folder: Path) -> None:
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                _fsync_file(Path(root) / name)
        _fsync_dir(Path(root))


def swap_in(work: Path, target: Path) -> None:
    """Replace the folder ``target`` by the complete folder ``work`` (two renames)."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        _remove(old)
        os.rename(target, old)
        try:
            os.rename(work, target)
        except BaseException:
            os.rename(old, target)
            raise
        _fsync_dir(target.parent)
        _remove(old)
    else:
        os.rename(work, target)
    _fsync_dir(target.parent)


def swap_entries(work: Path, target: Path) -> None:
    """Replace the entries of ``target`` (a mount point) by those of ``work`` inside it; on a
    failure the entries moved so far are moved back."""
    old = target / f".kgwb.old-{os.getpid()}"
    _remove(old)
    old.mkdir()
    moved_old: list[str] = []
    moved_new: list[str] = []
    try:
        for entry in sorted(target.iterdir()):
            if entry.name not in (work.name, old.name):
                os.rename(entry, old / entry.name)
                moved_old.append(entry.name)
        for entry in sorted(work.iterdir()):
            os.rename(entry, target / entry.name)
            moved_new.append(entry.name)
    except BaseException:
        for name in moved_new:
            with contextlib.suppress(OSError):
                os.rename(target / name, work / name)
        for name in moved_old:
            with contextlib.suppress(OSError):
                os.rename(old / name, target / name)
        _remove(old)
        raise
    _fsync_dir(target)
    _remove(old)
    _remove(work)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers(target: str | os.PathLike[str]) -> list[Path]:
    """Remove what interrupted writes of ``target`` left beside it; returns what was removed.

    A ``target`` missing while an ``.old-`` copy exists (a kill between the two renames of a
    swap) is first restored from that copy.
    """
    target = Path(target)
    parent = target.parent
    if not parent.is_dir():
        return []
    removed = []
    try:
        siblings = [p for p in parent.iterdir() if p.name.startswith(f".{target.name}.")]
    except OSError:
        return []
    for p in sorted(siblings):
        m = _LEFTOVER.match(p.name)
        if m is None or m.group("name") != target.name or _pid_alive(int(m.group("pid"))):
            continue
        if ".old-" in p.name and not target.exists():
            with contextlib.suppress(OSError):
                os.rename(p, target)
                continue
        with contextlib.suppress(OSError):
            _remove(p)
            removed.append(p)
    return removed


# ----------------------------------------------------------------------------- the rules
def check_output_not_input(
    out: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str] | None],
    *,
    what: str = "--out",
) -> None:
    """Refuse an output that is an input, lies inside one, or contains one."""
    out_p = Path(out).expanduser().resolve()
    for given in inputs:
        if not isinstance(given, (str, os.PathLike)) or str(given).startswith("sample"):
            continue
        inp = Path(given).expanduser()
        if not inp.exists():  # names such as "distant", or a load error to come
            continue
        inp = inp.resolve()
        if out_p == inp:
            relation = "is"
        elif inp in out_p.parents:
            relation = "lies inside"
        elif out_p in inp.parents:
            relation = "contains"
        else:
            continue
        raise OutputError(
            f"{out}: {what} {relation} the input {given}; writing there would replace what is"
            " being read (choose another folder)"
        )


def no_space(path: str | os.PathLike[str]) -> OSError:
    """The OSError a full disk raises (used by the fault tests)."""
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
