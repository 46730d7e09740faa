"""All-or-nothing results: ``--out`` always holds exactly one complete run.

A run builds its complete result in a hidden folder beside ``--out``
(``.<name>.planner-tmp-<pid>``) and only then swaps it in with two renames:

1. the earlier result, if any, is renamed aside to ``.<name>.planner-old-<pid>``;
2. the new folder is renamed to ``<name>``;
3. the earlier result is removed.

Both folders live in the same parent, so each rename is atomic. SIGINT and
SIGTERM raise ``KeyboardInterrupt`` / ``SystemExit`` while the result is being
built, so the ``finally`` clauses remove the temporary folder; during the two
renames they are held back and delivered once the swap is complete, so an
interrupt leaves either the earlier result or the new one.

Only a hard kill (SIGKILL, power loss) between the two renames can leave
``<name>`` absent with the earlier result aside; :func:`recover` (called by
:func:`check_output_dir`, hence before every run) renames it back and removes
the leftovers of dead runs.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from planner import settings
from planner.errors import PlannerError

log = logging.getLogger(__name__)

#: Marks of the hidden folders beside ``--out``: the result being built and the
#: earlier result moved aside during the swap.
TEMP_MARK = "planner-tmp"
OLD_MARK = "planner-old"
#: Longest file name most file systems accept (ext4, APFS, NTFS), bytes.
MAX_NAME_BYTES = 255
#: Linux process ids have at most 7 digits (pid_max ≤ 4194304).
_PID_DIGITS = 7
#: Files whose presence marks a folder as a planner result that a run may replace.
RESULT_MARKERS = ("run.json", "batch.json")
# Files an operating system's file browser leaves in any folder.
_SYSTEM_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})

#: Called with ``"built"``, ``"aside"`` and ``"swapped"`` during the swap; for tests only.
test_hook: Callable[[str], None] | None = None


def _text(english: str, chinese: str) -> str:
    return chinese if settings.lang == "zh" else english


def hidden_path(out_dir: str | Path, mark: str = TEMP_MARK, pid: int | None = None) -> Path:
    """The hidden folder beside ``out_dir`` used by process ``pid`` (default: this one)."""
    out_dir = Path(out_dir)
    return out_dir.parent / f".{out_dir.name}.{mark}-{os.getpid() if pid is None else pid}"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _leftovers(out_dir: Path, mark: str) -> list[tuple[Path, int]]:
    """Hidden folders of ``mark`` beside ``out_dir`` left by processes no longer running."""
    prefix = f".{out_dir.name}.{mark}-"
    found = []
    with contextlib.suppress(OSError):
        for entry in out_dir.parent.iterdir():
            pid_text = entry.name[len(prefix):] if entry.name.startswith(prefix) else ""
            if pid_text.isdigit() and not _pid_alive(int(pid_text)):
                found.append((entry, int(pid_text)))
    return sorted(found, key=lambda item: item[0].name)


def recover(out_dir: str | Path) -> Path | None:
    """Repair what a hard-killed run left beside ``out_dir``.

    When ``out_dir`` is absent but an earlier result was renamed aside by a run
    that no longer exists (killed between the two renames), that result is
    renamed back. Temporary and aside folders of dead runs are then removed.
    Folders of running processes are left alone.

    Parameters
    ----------
    out_dir
        The ``--out`` folder.

    Returns
    -------
    pathlib.Path or None
        ``out_dir`` when an earlier result was restored, else None.
    """
    out_dir = Path(out_dir)
    restored = None
    aside = _leftovers(out_dir, OLD_MARK)
    if aside and not out_dir.exists() and not out_dir.is_symlink():
        os.rename(aside[-1][0], out_dir)
        restored = out_dir
        log.warning(_text(f"{out_dir}: restored the earlier result an interrupted run had "
                          "moved aside",
                          f"{out_dir}: 已恢复被中断运行移开的上一次结果"))
    for folder, _pid in _leftovers(out_dir, OLD_MARK) + _leftovers(out_dir, TEMP_MARK):
        shutil.rmtree(folder, ignore_errors=True)
    return restored


def _refuse(out_dir: Path, english: str, chinese: str) -> PlannerError:
    return PlannerError(_text(f"--out {out_dir}: {english}", f"--out {out_dir}: {chinese}"))


def _check_name(out_dir: Path) -> None:
    if out_dir.parent == out_dir or out_dir.name in {"", ".", ".."}:
        raise _refuse(out_dir, "cannot replace this folder (choose a folder inside it)",
                      "无法替换此文件夹 (请选择其中的子文件夹)")
    hidden = f".{out_dir.name}.{TEMP_MARK}-" + "9" * _PID_DIGITS
    if len(os.fsencode(hidden)) > MAX_NAME_BYTES:
        limit = MAX_NAME_BYTES - len(hidden) + len(out_dir.name)
        raise _refuse(out_dir, f"the folder name is too long ({len(os.fsencode(out_dir.name))} "
                               f"bytes; at most {limit})",
                      f"文件夹名称过长 ({len(os.fsencode(out_dir.name))} 字节; 最多 {limit})")


def _probe_parent(out_dir: Path) -> None:
    """Create the missing parents and a probe file in them, then remove all of it."""
    created = []
    try:
        for folder in reversed([out_dir.parent, *out_dir.parent.parents]):
            if folder.exists() and not folder.is_dir():
                raise _refuse(out_dir, f"{folder} is a file, not a folder",
                              f"{folder} 是文件, 不是文件夹")
            if not folder.exists():
                folder.mkdir()
                created.append(folder)
        probe = hidden_path(out_dir, "planner-probe")
        probe.write_bytes(b"")
        probe.unlink()
    except PlannerError:
        raise
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise _refuse(out_dir, f"cannot write beside it ({reason})",
                      f"无法在其所在位置写入 ({reason})") from error
    finally:
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()


def _check_replaceable(out_dir: Path, inputs: tuple[Path, ...]) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise _refuse(out_dir, "is an existing file, not a folder", "是已有文件, 不是文件夹")
    if not out_dir.is_dir():
        return
    if not os.access(out_dir, os.R_OK | os.W_OK | os.X_OK):
        raise _refuse(out_dir, "the existing folder is not writable", "已有文件夹不可写")
    resolved = out_dir.resolve()
    for path in inputs:
        if resolved in Path(path).resolve().parents:
            raise _refuse(out_dir, f"contains the input {path}, which the run would replace",
                          f"包含输入文件 {path}, 运行会将其替换")
    entries = sorted(entry.name for entry in out_dir.iterdir()
                     if entry.name not in _SYSTEM_FILES)
    if entries and not any(name in entries for name in RESULT_MARKERS):
        raise _refuse(out_dir, f"is a folder that holds other files (e.g. {entries[0]!r}), not "
                               "planner results; the run replaces --out as a whole, so choose "
                               "a new or empty folder",
                      f"已有文件夹包含非 planner 结果的文件 (如 {entries[0]!r}); 运行会整体替换 "
                      "--out, 请选择新的或空的文件夹")


def check_output_dir(out_dir: str | Path, *, inputs: tuple[str | Path, ...] = ()) -> Path:
    """Check before any work that a run can replace ``out_dir`` with its result.

    Recovers what an earlier hard-killed run left (:func:`recover`), then
    refuses: an existing file; a folder that holds files that are not planner
    results (the run would delete them); a folder containing one of
    ``inputs``; a name too long once the hidden suffix is added; a parent that
    cannot be created or written (a probe file is created and removed; any
    parents created for the probe are removed again).

    Parameters
    ----------
    out_dir
        The ``--out`` folder.
    inputs
        The run's input files (they must not lie inside ``out_dir``).

    Returns
    -------
    pathlib.Path
        ``out_dir`` as an absolute path (a symbolic link is resolved, so that
        the link stays and its target is replaced).

    Raises
    ------
    PlannerError
        One line naming ``--out`` and the problem.
    """
    out_dir = Path(os.path.abspath(Path(out_dir).expanduser()))
    if out_dir.is_symlink():
        out_dir = out_dir.resolve()
    _check_name(out_dir)
    if out_dir.parent.is_dir():
        recover(out_dir)
    _check_replaceable(out_dir, tuple(Path(path) for path in inputs))
    _probe_parent(out_dir)
    return out_dir


class _Signals:
    """SIGINT/SIGTERM raise in the main thread; held back while ``deferred`` is set."""

    def __init__(self) -> None:
        self.deferred = False
        self.pending: int | None = None
        self.received: int | None = None
        self.previous: dict[int, object] = {}

    def handle(self, signum: int, _frame) -> None:
        # remembered, because the exception raised below can be swallowed when the
        # signal lands in a finaliser (``__del__``, a weakref callback)
        self.received = self.received or signum
        if self.deferred:
            self.pending = self.pending or signum
            return
        self.raise_for(signum)

    @staticmethod
    def raise_for(signum: int) -> None:
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers; a worker has no console
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.previous[signum] = signal.signal(signum, self.handle)

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def _swap(stage: Path, out_dir: Path, signals: _Signals) -> None:
    """Rename the earlier result aside, the new one in, then remove the earlier one."""
    aside = hidden_path(out_dir, OLD_MARK)
    signals.deferred = True
    try:
        _call_hook("built")
        if aside.exists():
            shutil.rmtree(aside)
        had_result = out_dir.exists()
        if had_result:
            os.rename(out_dir, aside)
            _call_hook("aside")
        try:
            os.rename(stage, out_dir)
        except OSError:
            if had_result:
                os.rename(aside, out_dir)  # put the earlier result back
            raise
        _call_hook("swapped")
    finally:
        signals.deferred = False
    shutil.rmtree(aside, ignore_errors=True)


def _call_hook(moment: str) -> None:
    if test_hook is not None:
        test_hook(moment)


@contextlib.contextmanager
def replace_directory(out_dir: str | Path) -> Iterator[Path]:
    """Build a complete result in a hidden folder, then make it ``out_dir`` as a whole.

    Use::

        out_dir = check_output_dir(out_dir, inputs=...)   # before the work
        ...                                               # the analysis
        with replace_directory(out_dir) as stage:
            write every file into stage

    On success ``out_dir`` holds exactly the files written into ``stage``
    (earlier files, even of another command, are gone); on an exception,
    SIGINT or SIGTERM the hidden folder is removed and ``out_dir`` is left as
    it was. A signal during the swap is delivered once the swap is complete.

    Parameters
    ----------
    out_dir
        The ``--out`` folder (its parent must exist or be creatable).

    Yields
    ------
    pathlib.Path
        The empty hidden folder ``.<name>.planner-tmp-<pid>`` beside ``out_dir``.
    """
    out_dir = Path(os.path.abspath(Path(out_dir).expanduser()))
    if out_dir.is_symlink():
        out_dir = out_dir.resolve()
    signals = _Signals()
    signals.install()
    stage = hidden_path(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        if stage.exists():
            shutil.rmtree(stage)
        stage.mkdir()
        yield stage
        if signals.received is not None:  # interrupted, and the exception got lost
            signals.raise_for(signals.received)
        _swap(stage, out_dir, signals)
    finally:
        signals.deferred = True  # a second Ctrl-C must not cut the clean-up short
        shutil.rmtree(stage, ignore_errors=True)
        signals.restore()
    if signals.pending is not None:
        signals.raise_for(signals.pending)


@contextlib.contextmanager
def replace_file(path: str | Path) -> Iterator[Path]:
    """Write one file (``planner map --out FILE``) beside it, then rename it into place.

    Yields the hidden temporary path ``.<name>.planner-tmp-<pid>``; on success
    it replaces ``path`` atomically, on an exception or signal it is removed.
    """
    path = Path(os.path.abspath(Path(path).expanduser()))
    signals = _Signals()
    signals.install()
    stage = hidden_path(path)
    try:
        yield stage
        if signals.received is not None:  # interrupted, and the exception got lost
            signals.raise_for(signals.received)
        signals.deferred = True
        os.replace(stage, path)
    finally:
        signals.deferred = True
        with contextlib.suppress(OSError):
            stage.unlink()
        signals.restore()
    if signals.pending is not None:
        signals.raise_for(signals.pending)


def check_output_file(path: str | Path, *, option: str = "--out") -> Path:
    """Check before any work that ``path`` can be written as a file (``planner map --out``).

    Raises
    ------
    PlannerError
        ``path`` is a folder, its name is too long, or its folder cannot be written.
    """
    path = Path(os.path.abspath(Path(path).expanduser()))
    if path.is_dir():
        message = _text(f"{option} {path}: is a folder, not a file",
                        f"{option} {path}: 是文件夹, 不是文件")
        raise PlannerError(message)
    _check_name(path)
    _probe_parent(path)
    return path


# --------------------------------------------------------------------------- work beside


class _Inline:
    """The fallback of :func:`beside`: the function runs when its result is asked for."""

    def __init__(self, function: Callable, args: tuple) -> None:
        self.function, self.args = function, args

    def result(self) -> Any:
        return self.function(*self.args)


class _Forked:
    """A function running in a forked child process (:func:`beside`)."""

    def __init__(self, function: Callable, args: tuple) -> None:
        context = multiprocessing.get_context("fork")
        self.receiver, sender = context.Pipe(duplex=False)
        # text still buffered would be written twice: by this process and the child
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.flush()
        # the child's garbage collector then leaves the parent's objects alone:
        # their pages stay shared instead of being copied by a collection
        gc.freeze()
        try:
            self.process = context.Process(target=_child,
                                           args=(sender, function, args, os.getpid()),
                                           daemon=True)
            self.process.start()
        finally:
            gc.unfreeze()
            sender.close()

    def result(self) -> Any:
        """Wait for the child; its value, or its exception raised here."""
        while True:
            try:
                kind, payload = self.receiver.recv()
            except EOFError:
                self.process.join()
                message = (f"a worker process of the run ended unexpectedly "
                           f"(exit code {self.process.exitcode})")
                raise RuntimeError(message) from None
            if kind == "log":
                logging.getLogger(payload.name).handle(payload)
            elif kind == "warning":
                warnings.warn_explicit(*payload)
            else:
                self.process.join()
                if kind == "error":
                    raise payload
                return payload

    def stop(self) -> None:
        """End the child if it still runs (the parent failed or was interrupted)."""
        if self.process.exitcode is None:
            self.process.kill()
        self.process.join()
        self.receiver.close()


def _portable(error: BaseException) -> BaseException:
    """``error`` as it can cross to the parent: itself when it pickles, else its one line."""
    from planner.errors import PlannerError, one_line

    if not isinstance(error, PlannerError):
        with contextlib.suppress(AttributeError):
            error.add_note("in the worker process:\n" + "".join(
                traceback.format_exception(error)).rstrip())
    try:
        return pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001  (any unpicklable exception)
        if isinstance(error, PlannerError):
            return PlannerError(str(error))
        return RuntimeError(one_line(error))


def _portable_record(record: logging.LogRecord) -> logging.LogRecord:
    """A log record whose message is formatted (its arguments may not pickle)."""
    record.msg, record.args = record.getMessage(), None
    if record.exc_info:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
    return record


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this child when the parent dies, even by SIGKILL (Linux).

    Else an orphan could go on writing into the hidden folder of a run that a
    later run is about to clean up.
    """
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6").prctl(pr_set_pdeathsig, int(signal.SIGKILL))
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _child(sender, function: Callable, args: tuple, parent: int) -> None:
    """The forked child: run ``function``, send back its log, warnings and outcome."""
    # the parent decides: a Ctrl-C reaches both, and the parent then kills this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)

    def handle(logger: logging.Logger, record: logging.LogRecord) -> None:
        if not logger.disabled and logger.filter(record):
            sender.send(("log", _portable_record(record)))

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG001
        try:
            pickle.dumps(category)
        except Exception:  # noqa: BLE001  (a class the parent cannot name)
            category = UserWarning
        sender.send(("warning", (str(message), category, filename, lineno)))

    # the parent's handlers (the CLI's, pytest's) get the records, in the parent
    logging.Logger.handle = handle  # type: ignore[method-assign]
    warnings.showwarning = show
    try:
        value = function(*args)
    except BaseException as error:  # noqa: BLE001  (every failure is the parent's to raise)
        sender.send(("error", _portable(error)))
    else:
        sender.send(("done", value))
    sender.close()


@contextlib.contextmanager
def inline(function: Callable, *args) -> Iterator[_Inline]:
    """:func:`beside`'s fallback on purpose: ``function(*args)`` runs in this
    process when ``result()`` is called."""
    yield _Inline(function, args)


def _can_fork() -> bool:
    return (settings.parallel_outputs and sys.platform == "linux"
            and threading.current_thread() is threading.main_thread()
            and threading.active_count() == 1
            and not multiprocessing.current_process().daemon)


@contextlib.contextmanager
def beside(function: Callable, *args) -> Iterator[_Forked | _Inline]:
    """Run ``function(*args)`` in a forked child process while the ``with`` block runs.

    Use::

        with beside(draw_map, analysis, stage) as drawing:
            write the tables                 # meanwhile the child draws
            value = drawing.result()         # waits; the child's exception is raised here

    The child writes its files into the same staging folder. Its log records
    and warnings are handled by the parent (the CLI's and the tests' handlers
    see them); an exception in it is raised by ``result()`` (the same type
    and message when it pickles, else a ``RuntimeError`` naming it). When the
    ``with`` block ends early (an exception, SIGINT, SIGTERM) the child is
    killed before the staging folder is removed, so it never writes into a
    removed folder nor outlives the run. The child ignores SIGINT (a Ctrl-C
    reaches the whole process group; the parent decides).

    Without ``fork`` (other systems than Linux, a thread other than the main
    one, a daemonic process such as a Dask worker, or
    :data:`planner.settings.parallel_outputs` off) ``function`` runs in this
    process when ``result()`` is called.

    Parameters
    ----------
    function
        Called with ``args`` in the child; its value must pickle.
    *args
        Its arguments (not copied: the child is a fork).

    Yields
    ------
    object
        A handle whose ``result()`` waits for the child and returns the value.
    """
    if not _can_fork():
        yield _Inline(function, args)
        return
    worker = _Forked(function, args)
    try:
        yield worker
    finally:
        worker.stop()
