"""gunicorn settings that have no meaning in Qiao. Each is accepted, so a
gunicorn command line or config file starts unchanged, and logged once at
info level with what Qiao does instead (``Setting.ignored``)."""

from __future__ import annotations

from .base import DICT, HOOK, Setting, anything, section

_STRICT = "Qiao's parser is strict (RFC 9112): such requests are refused with 400"
_ASGI = "an ASGI setting; Qiao serves WSGI"
_TLS = "TLS is rustls, with TLS 1.2 and 1.3 and modern cipher suites only"
_H2 = "Qiao's HTTP/2 limits are fixed (see the security reference)"
_DIRTY = "gunicorn's dirty arbiters have no Qiao counterpart"
_CONTROL = "Qiao is controlled with signals (see the process reference)"


def _value(name: str, flags: tuple[str, ...], default, meaning: str, instead: str) -> Setting:
    return Setting(name, flags, default, meaning, type=anything, metavar="VALUE", ignored=instead)


def _flag(name: str, flags: tuple[str, ...], meaning: str, instead: str) -> Setting:
    return Setting(name, flags, False, meaning, type=None, action="store_true", ignored=instead)


def _hook(name: str, meaning: str, instead: str) -> Setting:
    return Setting(name, (), None, meaning, type=None, action=HOOK, ignored=instead)


SETTINGS = section(
    "gunicorn settings without a meaning in Qiao",
    (
        _value(
            "worker_connections",
            ("--worker-connections",),
            1000,
            "Most clients of one gevent/eventlet/gthread worker.",
            "each worker's event loop holds up to --max-connections connections",
        ),
        _value(
            "worker_tmp_dir",
            ("--worker-tmp-dir",),
            None,
            "Directory of the workers' heartbeat files.",
            "heartbeats live in shared memory, not in files",
        ),
        _value(
            "tmp_upload_dir",
            (),
            None,
            "Directory for request data.",
            "request bodies are streamed to the application, never stored",
        ),
        Setting(
            "sendfile",
            ("--no-sendfile",),
            None,
            "Disable sendfile().",
            type=None,
            action="store_const",
            const=False,
            ignored="file_wrapper bodies go out with sendfile on plain sockets, copies over TLS",
        ),
        _value(
            "reload_engine",
            ("--reload-engine",),
            "auto",
            "How --reload watches files.",
            "--reload watches with inotify (the watchfiles package)",
        ),
        _flag("spew", ("--spew",), "Trace every line executed.", "no tracing; use a profiler"),
        Setting(
            "secure_scheme_headers",
            (),
            None,
            "Headers whose values mark an https request from a trusted proxy.",
            type=None,
            action=DICT,
            ignored="wsgi.url_scheme comes from X-Forwarded-Proto or Forwarded sent by "
            "--forwarded-allow-ips peers",
        ),
        _value(
            "forwarder_headers",
            ("--forwarder-headers",),
            "SCRIPT_NAME,PATH_INFO",
            "Headers a trusted proxy may set environ variables with.",
            "SCRIPT_NAME comes from --script-name or --mount, never from a header",
        ),
        _value(
            "header_map",
            ("--header-map",),
            "drop",
            "What to do with header names holding '_'.",
            "header names holding '_' are dropped (gunicorn's default, drop)",
        ),
        _flag(
            "permit_obsolete_folding", ("--permit-obsolete-folding",), "Accept folding.", _STRICT
        ),
        _flag("strip_header_spaces", ("--strip-header-spaces",), "Accept 'Name :'.", _STRICT),
        _flag(
            "permit_unconventional_http_method",
            ("--permit-unconventional-http-method",),
            "Accept odd methods.",
            "any RFC 9110 token is a method; others are refused with 400",
        ),
        _flag(
            "permit_unconventional_http_version",
            ("--permit-unconventional-http-version",),
            "Accept odd versions.",
            _STRICT,
        ),
        _flag(
            "casefold_http_method",
            ("--casefold-http-method",),
            "Upper-case methods.",
            "methods are case-sensitive (RFC 9110) and passed as sent",
        ),
        _value(
            "default_proc_name",
            (),
            "gunicorn",
            "gunicorn's internal process name.",
            "the process name is qiao, or --name",
        ),
        _value(
            "logger_class",
            ("--logger-class",),
            "gunicorn.glogging.Logger",
            "The class that writes the logs.",
            "logs go through Python logging's qiao.error and qiao.access loggers; configure "
            "them with --log-config or logconfig_dict",
        ),
        _value("ssl_version", ("--ssl-version",), None, "TLS version.", _TLS),
        _value("ciphers", ("--ciphers",), None, "TLS cipher suites.", _TLS),
        _flag("suppress_ragged_eofs", ("--suppress-ragged-eofs",), "TLS EOFs.", _TLS),
        _flag("do_handshake_on_connect", ("--do-handshake-on-connect",), "TLS handshake.", _TLS),
        _hook("ssl_context", "ssl_context(config, default_ssl_context_factory).", _TLS),
        _value(
            "http2_cleartext",
            ("--http2-cleartext",),
            "off",
            "How h2c is accepted.",
            "with --http2 (the default) h2c is served to clients with prior knowledge",
        ),
        _value("http2_max_concurrent_streams", ("--http2-max-concurrent-streams",), 100, "", _H2),
        _value("http2_initial_window_size", ("--http2-initial-window-size",), 65535, "", _H2),
        _value("http2_max_frame_size", ("--http2-max-frame-size",), 16384, "", _H2),
        _value("http2_max_header_list_size", ("--http2-max-header-list-size",), 65536, "", _H2),
        _value("root_path", ("--root-path",), "", "The ASGI root_path.", _ASGI),
        _value("asgi_loop", ("--asgi-loop",), "auto", "", _ASGI),
        _value("asgi_lifespan", ("--asgi-lifespan",), "auto", "", _ASGI),
        _value("asgi_disconnect_grace_period", ("--asgi-disconnect-grace-period",), 3, "", _ASGI),
        _value(
            "websocket_max_message_size", ("--websocket-max-message-size",), 16777216, "", _ASGI
        ),
        _value("http_parser", ("--http-parser",), "auto", "", "Qiao parses HTTP in Rust"),
        Setting(
            "dirty_apps",
            ("--dirty-app",),
            None,
            "Applications of the dirty workers.",
            type=anything,
            action="append",
            metavar="VALUE",
            ignored=_DIRTY,
        ),
        _value("dirty_workers", ("--dirty-workers",), 0, "", _DIRTY),
        _value("dirty_timeout", ("--dirty-timeout",), 300, "", _DIRTY),
        _value("dirty_threads", ("--dirty-threads",), 1, "", _DIRTY),
        _value("dirty_graceful_timeout", ("--dirty-graceful-timeout",), 30, "", _DIRTY),
        _hook("on_dirty_starting", "", _DIRTY),
        _hook("dirty_post_fork", "", _DIRTY),
        _hook("dirty_worker_init", "", _DIRTY),
        _hook("dirty_worker_exit", "", _DIRTY),
        _value("control_socket", ("--control-socket",), None, "", _CONTROL),
        _value("control_socket_mode", ("--control-socket-mode",), 384, "", _CONTROL),
        _flag("control_socket_disable", ("--no-control-socket",), "", _CONTROL),
    ),
)
