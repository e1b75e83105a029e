"""The error log and the access log, set up the way gunicorn operators
configure them.

Everything goes through Python's :mod:`logging`: ``qiao.error`` for errors
and lifecycle, ``qiao.access`` for one line per request (formatted and
written by :mod:`qiao.accesslog`). ``gunicorn.error`` and ``gunicorn.access``
are other names of the same two loggers (:mod:`qiao.logconfig`), so log
config files written for gunicorn configure Qiao.

:func:`setup` applies the settings, in gunicorn's order: the error log
(``--error-logfile``: stderr or a file), ``--capture-output`` (the process's
file descriptors 1 and 2 onto the error log file, inherited by the workers),
the access log, syslog, then a log config file or dictionary, which has the
last word on the loggers it names.

SIGUSR1 (logrotate) reopens every log file: :func:`reopen_files`. The
supervisor calls it from its main loop; a worker's signal handler only
writes a byte to a pipe (:func:`request_reopen`) and a thread of the worker
reopens (:func:`start_reopener`). File handlers are reopened under their
lock, so the access log's writer thread never writes to a closed file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterable

from . import _threads, logconfig

error_log = logging.getLogger("qiao.error")
access_logger = logging.getLogger("qiao.access")

#: The error log's line: gunicorn's ``[time] [pid] [LEVEL] message``.
ERROR_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
ERROR_DATEFMT = "%Y-%m-%d %H:%M:%S %z"
#: Marks the handlers :func:`setup` added, so a second setup replaces them.
OWN = "qiao_own"
#: The error log setting's value meaning stderr (stdout for the access log).
STDIO = "-"

_capture: dict = {"path": None, "file": None}
_lock = threading.Lock()


class LogSetupError(Exception):
    """A log destination or log config that cannot be used (one line)."""


def log_error(message: str, exc: BaseException | None) -> None:
    """Logs an application failure with its traceback (called by the engine)."""
    if exc is None:
        error_log.error(message)
    else:
        error_log.error(message, exc_info=(type(exc), exc, exc.__traceback__))


def log_warning(message: str) -> None:
    """Logs what the operator should know of (a refused uwsgi peer...)."""
    error_log.warning(message)


def log_engine(level: int, message: str) -> None:
    """Logs a line of the engine's own (a proxy upstream failing, an
    internal error) at ``level`` (a ``logging`` level number)."""
    error_log.log(level, message)


def log_debug(message: str) -> None:
    """Logs an event worth knowing when debugging (client disconnects...)."""
    error_log.debug(message)


def access_enabled(opts: dict) -> bool:
    """Whether requests are logged at all: an access log file, a log config
    (which may give ``qiao.access`` handlers), or syslog (as gunicorn)."""
    return bool(
        opts.get("access_log")
        or opts.get("logconfig")
        or opts.get("logconfig_dict")
        or opts.get("logconfig_json")
        or (opts.get("syslog") and not opts.get("disable_redirect_access_to_syslog"))
    )


def _handler(where: str, stream, what: str) -> logging.Handler:
    if where == STDIO:
        return logging.StreamHandler(stream)
    try:
        return logging.FileHandler(where)
    except OSError as e:
        raise LogSetupError(f"cannot open the {what} {where!r}: {e.strerror or e}") from None


def _add(logger: logging.Logger, handler: logging.Handler, fmt: logging.Formatter) -> None:
    handler.setFormatter(fmt)
    setattr(handler, OWN, True)
    logger.addHandler(handler)


def setup(opts: dict) -> None:
    """Configures the loggers from the resolved settings ``opts``.

    Library users of ``qiao.serve`` who gave ``qiao.error`` handlers
    themselves keep them: the stderr handler is only added to a logger
    without handlers. Raises :class:`LogSetupError`."""
    logconfig.alias_gunicorn_loggers()
    for logger in (error_log, access_logger):
        for old in [h for h in logger.handlers if getattr(h, OWN, False)]:
            logger.removeHandler(old)
            old.close()
    where = opts.get("error_log") or STDIO
    if opts.get("capture_output") and where != STDIO:
        capture(where)
    if where != STDIO or not error_log.handlers:
        _add(
            error_log,
            _handler(where, sys.stderr, "error log"),
            logging.Formatter(ERROR_FORMAT, ERROR_DATEFMT),
        )
        error_log.propagate = False
    error_log.setLevel(opts["log_level"].upper())
    if opts.get("access_log"):
        _add(
            access_logger,
            _handler(opts["access_log"], sys.stdout, "access log"),
            logging.Formatter(),
        )
        access_logger.propagate = False
    if access_enabled(opts):
        access_logger.setLevel(logging.INFO)
    if opts.get("syslog"):
        kinds = [(error_log, "error")]
        if not opts.get("disable_redirect_access_to_syslog"):
            kinds.append((access_logger, "access"))
            access_logger.propagate = False
        for logger, kind in kinds:
            try:
                handler = logconfig.syslog_handler(opts, kind)
            except (OSError, ValueError) as e:
                raise LogSetupError(f"cannot log to syslog at {opts['syslog_addr']}: {e}") from None
            setattr(handler, OWN, True)
            logger.addHandler(handler)
    try:
        logconfig.apply(opts)
    except logconfig.LogConfigError as e:
        raise LogSetupError(str(e)) from None


# -- --capture-output and the daemon's stdio --------------------------------


def capture(path: str) -> None:
    """Points file descriptors 1 and 2 at the error log file ``path``
    (appending), so prints and C extensions' output land there; forked
    workers inherit it."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        new = open(path, "a", buffering=1)  # noqa: SIM115 - kept open, replaced on reopen
    except OSError as e:
        raise LogSetupError(f"cannot open the error log {path!r}: {e.strerror or e}") from None
    with _lock:
        os.dup2(new.fileno(), 1)
        os.dup2(new.fileno(), 2)
        old, _capture["file"], _capture["path"] = _capture["file"], new, path
    if old is not None:
        old.close()


def redirect_stdio(opts: dict) -> None:
    """For ``--daemon``, in the detached process: stdin from /dev/null;
    stdout and stderr to the error log file with ``--capture-output`` (and
    a file error log), else kept with ``-R`` (``enable_stdio_inheritance``),
    else to /dev/null. Callable before or after :func:`setup`."""
    null = os.open(os.devnull, os.O_RDWR)
    try:
        os.dup2(null, 0)
        where = opts.get("error_log") or STDIO
        if opts.get("capture_output") and where != STDIO:
            capture(where)
        elif not opts.get("enable_stdio_inheritance"):
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os.dup2(null, 1)
            os.dup2(null, 2)
    finally:
        os.close(null)


# -- SIGUSR1: reopen the log files -------------------------------------------


def _all_handlers(extra: Iterable[logging.Handler]) -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [
        lg
        for lg in list(logging.Logger.manager.loggerDict.values())
        if isinstance(lg, logging.Logger)
    ]
    seen: dict[int, logging.Handler] = {}
    for handler in [h for lg in loggers for h in lg.handlers] + list(extra):
        seen.setdefault(id(handler), handler)
    return list(seen.values())


def reopen_files(extra: Iterable[logging.Handler] = ()) -> None:
    """Reopens the ``--capture-output`` file and every file handler of
    every logger (and ``extra``, handlers held aside): after logrotate
    renamed the files, writing goes on in new ones at the same paths."""
    path = _capture["path"]
    if path is not None:
        try:
            capture(path)
        except LogSetupError as e:
            error_log.error("%s", e)
    for handler in _all_handlers(extra):
        if not isinstance(handler, logging.FileHandler):
            continue
        handler.acquire()
        try:
            if handler.stream:
                handler.close()
                handler.stream = handler._open()
        except OSError as e:
            # Log it after releasing the lock: this handler may be the error log's.
            failed = f"cannot reopen the log file {handler.baseFilename!r}: {e.strerror or e}"
        else:
            failed = None
        finally:
            handler.release()
        if failed:
            error_log.error("%s", failed)


_reopener: dict = {"w": None, "pending": False}


def start_reopener() -> None:
    """Starts the thread that reopens the log files when
    :func:`request_reopen` asks (a worker, after the fork)."""
    if _reopener["w"] is not None:
        return
    r, w = os.pipe()
    for fd in (r, w):
        os.set_inheritable(fd, False)
    os.set_blocking(w, False)

    def loop() -> None:
        while True:
            try:
                if not os.read(r, 64):
                    return
            except InterruptedError:
                continue
            try:
                reopen_files()
            except Exception:  # noqa: BLE001 - the thread must outlive a bad handler
                error_log.exception("cannot reopen the log files")

    _threads.start(loop)  # a real thread, even under gevent
    _reopener["w"] = w
    if _reopener["pending"]:  # SIGUSR1 came before the thread
        request_reopen()


def request_reopen(signum: int | None = None, frame: object = None) -> None:
    """SIGUSR1's handler in a worker: only wakes the reopening thread."""
    w = _reopener["w"]
    if w is None:
        _reopener["pending"] = True
        return
    with contextlib.suppress(OSError):
        os.write(w, b"r")
