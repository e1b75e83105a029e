"""Type stubs for the native engine module ``qiao._qiao``."""

from collections.abc import Iterator
from typing import Any, Callable

__version__: str

class RequestBodyError(OSError):
    """The request body could not be read in full."""

class FileWrapper:
    filelike: Any
    blksize: int
    def __init__(self, filelike: Any, blksize: int = 8192) -> None: ...
    def __iter__(self) -> Iterator[bytes]: ...
    def __next__(self) -> bytes: ...
    def close(self) -> None: ...

class Input:
    def read(self, size: int | None = None) -> bytes: ...
    def readline(self, size: int | None = None) -> bytes: ...
    def readlines(self, hint: int | None = None) -> list[bytes]: ...
    def __iter__(self) -> Iterator[bytes]: ...
    def __next__(self) -> bytes: ...
    def readable(self) -> bool: ...
    def close(self) -> None: ...

class StartResponse:
    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]: ...
    def write(self, data: bytes) -> None: ...

class Control:
    """A handle on a running ``serve``: its methods only set a flag."""

    def __init__(self) -> None: ...
    def drain(self) -> None: ...
    def stop(self) -> None: ...
    @property
    def served(self) -> int: ...
    @property
    def draining(self) -> bool: ...

def heartbeat_layout() -> tuple[int, int, int]: ...
def metrics_layout() -> tuple[tuple[int, int, int, int, int], list[str], int, list[float]]: ...
def serve(
    app: Callable[..., Any],
    listeners: list[tuple[int, bool]],
    *,
    threads: int = 128,
    multiprocess: bool = False,
    url_scheme: str = "http",
    script_name: str = "",
    errors: Any = None,
    log_error: Callable[[str, BaseException | None], None] | None = None,
    access_log: Callable[[dict, int, int, float], None] | None = None,
    keepalive: float = 5.0,
    header_timeout: float = 30.0,
    io_timeout: float = 30.0,
    max_connections: int = 10000,
    limit_request_line: int = 8190,
    limit_request_fields: int = 100,
    limit_request_field_size: int = 8190,
    max_body: int | None = None,
    control: Control | None = None,
    max_requests: int = 0,
    graceful_timeout: float = 30.0,
    heartbeat: tuple[Any, int] | None = None,
    health_path: str | None = None,
    forwarded_allow_ips: str = "",
    proxy_protocol: bool = False,
    uwsgi_listeners: list[int] = ...,
    metrics: tuple[Any, int] | None = None,
    compress: dict[str, Any] | None = None,
) -> None: ...

class Compressor:
    """A streaming compressor for one response body (``gzip``, ``br`` or ``zstd``)."""

    kind: str
    level: int
    def __init__(self, kind: str, level: int | None = None) -> None: ...
    def compress(self, data: bytes) -> bytes: ...
    def flush(self) -> bytes: ...
    def finish(self) -> bytes: ...
