"""The engine's one configuration: ``qiao.server.engine_options`` builds the
``config`` of ``_qiao.serve`` from the settings table, ``src/wsgi/config.rs``
reads it (every key required) and the stub ``_qiao.pyi`` spells its shape.
mypy's stubtest checks the stub's functions and classes against the module
(``scripts/test.sh``) but not the shape of a dict argument: these tests keep
the three in step."""

from __future__ import annotations

import ast
import copy
import socket
from pathlib import Path

import pytest
import qiao
from qiao import _qiao
from qiao.config import DEFAULTS
from qiao.server import engine_options

STUB = Path(qiao.__file__).with_name("_qiao.pyi")


def stub_typeddicts() -> dict[str, dict[str, str]]:
    """Each ``TypedDict`` of the stub: its keys and their annotations."""
    tree = ast.parse(STUB.read_text())
    shapes = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(
            isinstance(b, ast.Name) and b.id == "TypedDict" for b in node.bases
        ):
            shapes[node.name] = {
                item.target.id: ast.unparse(item.annotation)
                for item in node.body
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
            }
    return shapes


def settings(**changes) -> dict:
    return {**DEFAULTS, **changes}


def test_engine_options_have_the_stubs_shape():
    shapes = stub_typeddicts()
    config = engine_options(settings(compress=True))

    def check(value: dict, shape: str, where: str) -> None:
        fields = shapes[shape]
        assert sorted(value) == sorted(fields), where
        for key, annotation in fields.items():
            group = annotation.split(" |")[0]
            if group in shapes and value[key] is not None:
                check(value[key], group, f"{where}.{key}")

    check(config, "EngineConfig", "config")


def listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def serve_error(config: dict) -> str:
    """The ``ValueError`` the engine refuses ``config`` with, before serving."""
    with listener() as sock, pytest.raises(ValueError) as caught:
        _qiao.serve(lambda e, s: [], [(sock.fileno(), False, "http")], config=config)
    return str(caught.value)


@pytest.mark.parametrize(
    ("group", "key"),
    [(None, "threads"), (None, "logging"), ("limits", "max_body"), ("proxy", "timeout")],
)
def test_a_missing_setting_is_named(group, key):
    """No second default in the engine: a key the Python side forgot is an
    error naming it."""
    config = copy.deepcopy(engine_options(settings()))
    del (config[group] if group else config)[key]
    assert repr(key) in serve_error(config)


def test_a_missing_compress_setting_is_named():
    config = engine_options(settings(compress=True))
    del config["compress"]["min_size"]
    assert 'compress: "min_size" is required' in serve_error(config)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"keepalive": -1.0}, "invalid keepalive: -1"),
        ({"static_etag": "bogus"}, "static_etag must be strong, weak or none"),
        ({"proxy_balance": "random"}, "proxy_balance must be round_robin or least_conn"),
        (
            {"certfile": "/c.pem", "cert_reqs": "always"},
            "cert_reqs: expected none, optional or required",
        ),
        ({"keyfile": "/k.pem"}, "TLS needs both certfile and keyfile"),
    ],
)
def test_an_invalid_setting_is_named(changes, message):
    assert message in serve_error(engine_options(settings(**changes)))


def test_an_unknown_listener_protocol_is_refused():
    with listener() as sock, pytest.raises(ValueError, match="listener protocol"):
        _qiao.serve(
            lambda e, s: [], [(sock.fileno(), False, "h3")], config=engine_options(settings())
        )
