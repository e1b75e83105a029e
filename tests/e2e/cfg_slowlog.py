"""An application whose import attaches a slow handler to ``qiao.access``:
each line takes ``CFG_SLOWLOG_DELAY`` seconds to write to ``CFG_SLOWLOG_FILE``.
A request must not wait for it, and a graceful stop must still write every
line before the worker exits."""

from __future__ import annotations

import logging
import os
import time

from cfg_apps import app as app


class SlowHandler(logging.Handler):
    def __init__(self, path: str, delay: float) -> None:
        super().__init__()
        self.path, self.delay = path, delay

    def emit(self, record: logging.LogRecord) -> None:
        time.sleep(self.delay)
        with open(self.path, "a") as f:
            f.write(record.getMessage() + "\n")


logging.getLogger("qiao.access").addHandler(
    SlowHandler(os.environ["CFG_SLOWLOG_FILE"], float(os.environ.get("CFG_SLOWLOG_DELAY", "0.3")))
)
