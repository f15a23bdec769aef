"""Every file and folder the ``sparseflow`` commands write goes through here: never destroy a user's data.

The rules (README "Safety"):

* An output that is also an input (the same file, a hard or symbolic link to it, or a folder
  output that holds an input) is refused before any work starts: :func:`check_not_input`.
* A single file is written to a temporary sibling and renamed over the target, so it is never
  half-written; its mode follows the umask (like a plain ``open``). A target that is a symbolic
  link is followed (the link stays a link); a special file (``/dev/null``, a FIFO, a character
  device) is written through, never replaced: :func:`write_file`, :func:`save_npy`.
* An output folder is replaced (or cleared) only when SparseFlow made it: it holds SparseFlow's
  marker file :data:`MARKER` (one JSON line listing the files it wrote) and nothing that the
  marker does not list. A new or empty folder is used as is. Anything else is refused with one
  line naming a file SparseFlow did not write: :func:`check_dir`, :func:`new_dir`,
  :func:`claim_dir`.
* Every ``OSError`` on the way (read-only or full file system, permissions) becomes one
  :class:`SparseFlowError` line naming the path; a failed write leaves no temporary file behind.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

from model.errors import SparseFlowError

MARKER = ".sparseflow-output"
VERSION = 1


def json_default(o):
    """``json.dump(..., default=json_default)``: NumPy scalars and arrays as Python numbers and
    lists, paths as strings; anything else is a programming error (``TypeError``). Every JSON
    file and ``--json`` report SparseFlow writes goes through it."""
    import numpy as np
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def umask() -> int:
    """The process umask (read without changing it for longer than this call)."""
    old = os.umask(0o22)
    os.umask(old)
    return old


def os_error(path, exc: OSError, doing: str = "cannot write") -> SparseFlowError:
    """One line for an ``OSError``: the path and the system's reason."""
    why = exc.strerror or str(exc) or type(exc).__name__
    return SparseFlowError(f"{path}: {doing} ({why})")


# ----------------------------------------------------------------------------------------------
# Inputs vs outputs

def _real(p) -> Path:
    return Path(os.path.realpath(os.path.abspath(os.fspath(p))))


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def _inside(child: Path, folder: Path) -> bool:
    return folder == child or folder in child.parents


def check_not_input(out, inputs, out_opt: str = "--out", folder: bool = False) -> None:
    """Refuse an output that is (or, for a folder output, holds) one of ``inputs``.

    ``inputs``: ``{option or label: path}`` (``None`` paths are skipped). Also refuses a file
    output inside an input folder (``decode IMG --out IMG/manifest.json``).
    """
    o = _real(out)
    for opt, path in inputs.items():
        if path is None:
            continue
        i = _real(path)
        if _same(o, i):
            raise SparseFlowError(f"{out_opt} {out} is the input {opt} {path}; refusing to overwrite an input")
        if folder and _inside(i, o):
            raise SparseFlowError(f"{out_opt} {out} holds the input {opt} {path}; refusing to replace it")
        if not folder and i.is_dir() and _inside(o, i):
            raise SparseFlowError(f"{out_opt} {out} is inside the input {opt} {path}; refusing to change an input")


# ----------------------------------------------------------------------------------------------
# Single files

def _check_parent(target: Path, shown) -> None:
    parent = target.parent
    if not parent.is_dir():
        raise SparseFlowError(f"{parent}: the output's parent folder does not exist")


def check_file(path, opt: str = "--out") -> Path:
    """Raise unless ``path`` can name an output file (checked before any work); return its real path."""
    shown = Path(path)
    target = _real(path)
    if target.is_dir():
        raise SparseFlowError(f"{opt} {shown} is a folder, not a file")
    if not target.exists():
        _check_parent(target, shown)
    return target


def write_file(path, write) -> Path:
    """Write one output file; ``write(fileobj)`` fills it (binary). Returns ``path``.

    Regular (or new) targets: temp sibling + rename, mode from the umask. Symbolic links are
    followed, special files written through.
    """
    shown = Path(path)
    target = check_file(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise os_error(shown, exc) from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        buf = io.BytesIO()  # writers may seek (numpy.save); a FIFO cannot
        write(buf)
        try:  # /dev/null, a FIFO, a terminal: write through, never replace
            with open(target, "wb") as fh:
                fh.write(buf.getvalue())
        except OSError as exc:
            raise os_error(shown, exc) from None
        return shown
    _check_parent(target, shown)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise os_error(shown, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
        mode = (stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~umask())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise os_error(shown, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return shown


def write_bytes(path, data: bytes) -> Path:
    return write_file(path, lambda fh: fh.write(data))


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode())


def save_npy(path, array) -> Path:
    import numpy as np
    return write_file(path, lambda fh: np.save(fh, array))


# ----------------------------------------------------------------------------------------------
# Folders

def listing(folder: Path) -> list[str]:
    """Every file (and symlink) under ``folder``, relative, sorted; folders are implied."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        rel = Path(dirpath).relative_to(folder)
        for d in list(dirnames):
            if (Path(dirpath) / d).is_symlink():
                out.append(str(rel / d))
                dirnames.remove(d)
        out += [str(rel / f) for f in filenames]
    return sorted(os.path.normpath(p) for p in out)


def _marked_files(folder: Path, legacy=None) -> set[str] | None:
    """The files SparseFlow says it wrote into ``folder`` (None: not a SparseFlow folder)."""
    m = folder / MARKER
    if m.is_file() and not m.is_symlink():
        try:
            data = json.loads(m.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError, UnicodeDecodeError):
            return None
        if isinstance(data, dict) and data.get("sparseflow_output") == VERSION and isinstance(data.get("files"), list):
            return {os.path.normpath(str(f)) for f in data["files"]} | {MARKER}
        return None
    return legacy(folder) if legacy else None


def foreign_file(folder, legacy=None) -> str | None:
    """The first file in ``folder`` that SparseFlow did not write (None: the folder is SparseFlow's or empty)."""
    folder = Path(folder)
    files = listing(folder)
    if not files:
        return None
    ours = _marked_files(folder, legacy)
    if ours is None:
        return files[0]
    return next((f for f in files if f not in ours), None)


def _out_dir(out, opt: str) -> Path:
    shown = Path(out)
    target = _real(out)
    if target.exists() and not target.is_dir():
        raise SparseFlowError(f"{opt} {shown} exists and is not a folder")
    try:
        cwd = _real(os.getcwd())
    except OSError:
        cwd = None
    if cwd is not None and _inside(cwd, target):
        raise SparseFlowError(f"{opt} {shown} is the working folder (or holds it); give a new folder's name")
    if not target.parent.is_dir():
        raise SparseFlowError(f"{target.parent}: the output's parent folder does not exist")
    return target


def check_dir(out, opt: str = "--out", legacy=None) -> Path:
    """Raise unless ``out`` may become a SparseFlow output folder; return its real path (resolved)."""
    target = _out_dir(out, opt)
    if target.is_dir():
        bad = foreign_file(target, legacy)
        if bad is not None:
            raise SparseFlowError(f"{opt} {out} holds {bad}, which SparseFlow did not write; not replacing it "
                                  f"(choose a new folder)")
    return target


def _mark(folder: Path, command: str, also=()) -> None:
    files = sorted(set(f for f in listing(folder) if f != MARKER) | set(also))
    line = json.dumps({"sparseflow_output": VERSION, "command": command, "files": files})
    (folder / MARKER).write_text(line + "\n")


def _chmod_dir(path: Path) -> None:
    os.chmod(path, 0o777 & ~umask())  # mkdtemp makes 0700: follow the umask like mkdir


@contextmanager
def new_dir(out, command: str, opt: str = "--out", legacy=None):
    """Yield a temporary sibling folder to fill; on success it replaces ``out`` in one rename.

    ``out`` must be new, empty or SparseFlow's (:func:`check_dir`); on any error nothing
    changes and the temporary folder is removed.
    """
    target = check_dir(out, opt, legacy)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        _chmod_dir(tmp)
    except OSError as exc:
        raise os_error(out, exc) from None
    try:
        try:
            yield tmp
            _mark(tmp, command)
            check_dir(out, opt, legacy)  # nothing foreign appeared while we worked
            if target.is_dir():
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
                os.rename(target, old / "x")
                try:
                    os.rename(tmp, target)
                except BaseException:
                    os.rename(old / "x", target)
                    raise
                finally:
                    shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, target)
        except OSError as exc:
            raise os_error(out, exc) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def claim_dir(out, command: str, opt: str = "--out", clear: bool = False, legacy=None, also=()):
    """Work inside ``out`` itself (tools that need a fixed folder); yield its path.

    ``out`` must be new, empty or SparseFlow's. With ``clear`` the files SparseFlow listed are
    removed first (nothing else is there). The marker is written first and rewritten, with every
    file then present, on the way out (also after an error, so a re-run may replace them).
    ``also``: names the command may create while it runs (a database and its journal), listed from
    the start so a run killed before the way out leaves a folder a re-run accepts.
    """
    shown = Path(out)
    target = check_dir(out, opt, legacy)
    try:
        if clear and target.is_dir():
            for rel in listing(target):
                (target / rel).unlink()
            for dirpath, _dirs, _files in sorted(os.walk(target), key=lambda t: -len(t[0])):
                if Path(dirpath) != target:
                    os.rmdir(dirpath)
        target.mkdir(exist_ok=True)
        _mark(target, command, also)
    except OSError as exc:
        raise os_error(shown, exc) from None
    try:
        yield shown
    finally:
        try:
            _mark(target, command, also)
        except OSError:
            pass
