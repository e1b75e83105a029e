"""An application module that cannot be imported (``test_process_workers.py``:
a server must stop with one clear error instead of respawning workers
forever)."""

raise RuntimeError("proc_broken is deliberately broken at import time")
