"""Router and Mount over real sockets (``mw_apps:make_routing()``): the
classic regex router, routing args, 404s, prefix mounting with SCRIPT_NAME,
longest prefix and segment boundaries."""

from __future__ import annotations

import pytest
import requests
from mw_servers import KINDS, build


@pytest.fixture(params=KINDS)
def site(request, pooled):
    return build(request.param, pooled, "routing", {}).url


def get_json(url):
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_classic_router_index_and_hello(site):
    assert requests.get(site + "/", timeout=10).text == "index"
    assert requests.get(site + "/hello", timeout=10).text == "Hello world!"
    assert requests.get(site + "/hello/", timeout=10).text == "Hello world!"
    assert requests.get(site + "/hello/ada", timeout=10).text == "Hello ada!"


def test_router_404_by_default(site):
    resp = requests.get(site + "/nowhere", timeout=10)
    assert resp.status_code == 404
    assert resp.text == "Not Found\n"
    assert resp.headers["Content-Type"].startswith("text/plain")


def test_router_custom_not_found(site):
    resp = requests.get(site + "/teapot/anything", timeout=10)
    assert (resp.status_code, resp.text) == (418, "no route here")


def test_named_and_positional_groups_in_routing_args(site):
    info = get_json(site + "/items/42/details")
    assert info["app"] == "item"
    assert info["routing_args"] == [["42"], {"part": "details"}]


def test_mount_moves_prefix_to_script_name(site):
    info = get_json(site + "/admin/users?x=1")
    assert info == {
        "SCRIPT_NAME": "/admin",
        "PATH_INFO": "/users",
        "QUERY_STRING": "x=1",
        "routing_args": None,
        "app": "admin",
    }


def test_mount_exact_prefix_leaves_empty_path(site):
    info = get_json(site + "/admin")
    assert (info["SCRIPT_NAME"], info["PATH_INFO"], info["app"]) == ("/admin", "", "admin")


def test_mount_respects_segment_boundaries(site):
    # /adminx is not under /admin: it goes to the default app (the Router), a 404 there
    assert requests.get(site + "/adminx", timeout=10).status_code == 404
    assert requests.get(site + "/apix/v1/users", timeout=10).status_code == 404


def test_mount_longest_prefix_wins(site):
    info = get_json(site + "/api/v2/users")
    assert (info["app"], info["SCRIPT_NAME"], info["PATH_INFO"]) == ("api-v2", "/api/v2", "/users")
    info = get_json(site + "/api/v1/users")
    assert (info["app"], info["SCRIPT_NAME"], info["PATH_INFO"]) == (
        "api-router",
        "/api",
        "/v1/users",
    )
    assert info["routing_args"] == [["1"], {"what": "users"}]


def test_router_inside_mount_falls_back(site):
    info = get_json(site + "/api/other")
    assert (info["app"], info["SCRIPT_NAME"], info["PATH_INFO"]) == (
        "api-fallback",
        "/api",
        "/other",
    )


def test_mount_matches_decoded_path(site):
    info = get_json(site + "/%61dmin/x%20y")
    assert (info["app"], info["SCRIPT_NAME"], info["PATH_INFO"]) == ("admin", "/admin", "/x y")
