"""Type stubs for the native engine module ``qiao._qiao``.

``scripts/test.sh`` checks them against the built module with
``mypy.stubtest``: a parameter, class or name that drifts fails the run.
The ``config`` of :func:`serve` is spelled here as ``TypedDict``s (only for
type checkers, ``@type_check_only``: at run time it is a plain dict), key
for key what ``src/wsgi/config.rs`` reads and
``qiao.server.engine_options`` builds; every key is required.
"""

from collections.abc import Callable, Iterator
from typing import Any, Literal, TypedDict, final, type_check_only

from typing_extensions import Self

__all__ = [
    "serve",
    "Control",
    "heartbeat_layout",
    "metrics_layout",
    "FileWrapper",
    "Input",
    "StartResponse",
    "Compressor",
    "RequestBodyError",
    "__version__",
    "MAX_FIELD_PARSE",
]

__version__: str
#: Longest request field value the field rules parse (``qiao_http::limits``).
MAX_FIELD_PARSE: int

class RequestBodyError(OSError):
    """The request body could not be read in full."""

@final
class FileWrapper:
    filelike: Any
    blksize: int
    def __new__(cls, filelike: Any, blksize: int = ...) -> Self: ...
    def __iter__(self) -> Iterator[bytes]: ...
    def __next__(self) -> bytes: ...
    def close(self) -> None: ...

@final
class Input:
    def read(self, size: int | None = None) -> bytes: ...
    def readline(self, size: int | None = None) -> bytes: ...
    def readlines(self, hint: int | None = None) -> list[bytes]: ...
    def __iter__(self) -> Iterator[bytes]: ...
    def __next__(self) -> bytes: ...
    def readable(self) -> bool: ...
    def close(self) -> None: ...

@final
class StartResponse:
    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]: ...
    def write(self, data: bytes) -> None: ...

@final
class Control:
    """A handle on a running ``serve``: its methods only set a flag."""

    def __new__(cls) -> Self: ...
    def drain(self) -> None: ...
    def stop(self) -> None: ...
    @property
    def served(self) -> int: ...
    @property
    def draining(self) -> bool: ...
    @property
    def finished(self) -> bool: ...
    def abandon(self, heartbeat: Any, offset: int, threads: int) -> list[int]: ...

def heartbeat_layout() -> dict[str, int]: ...
def metrics_layout() -> tuple[tuple[int, int, int, int, int], list[str], int, list[float]]: ...

@type_check_only
class LimitsConfig(TypedDict):
    limit_request_line: int
    limit_request_fields: int
    limit_request_field_size: int
    max_body: int | None
    max_connections: int

@type_check_only
class TimeoutsConfig(TypedDict):
    """Seconds."""

    keepalive: float
    header_timeout: float
    io_timeout: float
    graceful_timeout: float

@type_check_only
class TlsConfig(TypedDict):
    certfile: str | None
    keyfile: str | None
    ca_certs: str | None
    cert_reqs: Literal["none", "optional", "required"]
    http2: bool

@type_check_only
class StaticConfig(TypedDict):
    dirs: list[tuple[str, str]]
    index: str | None
    cache_control: str | None
    etag: Literal["strong", "weak", "none"]
    hidden: bool
    types: list[tuple[str, str]]

@type_check_only
class ProxyConfig(TypedDict):
    routes: list[tuple[str, list[str]]]
    balance: Literal["round_robin", "least_conn"]
    timeout: float
    connect_timeout: float
    max_fails: int
    probe_interval: float
    preserve_host: bool
    status: str | None
    health_path: str | None

@type_check_only
class CompressConfig(TypedDict):
    min_size: int
    types: list[str]
    codings: list[str]
    levels: dict[str, int]

@type_check_only
class LoggingConfig(TypedDict):
    log_error: Callable[[str, BaseException | None], None]
    access_log: Callable[[dict[str, Any], int, int, float], None] | None
    access_log_fields: list[str] | None

@type_check_only
class EngineConfig(TypedDict):
    threads: int
    multiprocess: bool
    script_name: str
    health_path: str | None
    forwarded_allow_ips: str
    proxy_protocol: bool
    forwarded_headers: str
    proxy_allow_ips: str
    uwsgi_allow_ips: str
    max_requests: int
    limits: LimitsConfig
    timeouts: TimeoutsConfig
    tls: TlsConfig
    static: StaticConfig
    proxy: ProxyConfig
    compress: CompressConfig | None
    logging: LoggingConfig

def serve(
    app: Callable[..., Any],
    listeners: list[tuple[int, bool, Literal["http", "uwsgi", "tls"]]],
    *,
    config: EngineConfig,
    control: Control | None = None,
    heartbeat: tuple[Any, int] | None = None,
    metrics: tuple[Any, int] | None = None,
) -> None: ...

@final
class Compressor:
    """A streaming compressor for one response body (``gzip``, ``br`` or ``zstd``)."""

    @property
    def kind(self) -> str: ...
    @property
    def level(self) -> int: ...
    def __new__(cls, kind: str, level: int | None = None) -> Self: ...
    def compress(self, data: bytes) -> bytes: ...
    def flush(self) -> bytes: ...
    def finish(self) -> bytes: ...
