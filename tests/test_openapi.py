"""bot/web/openapi.yml describes exactly the routes the web app has (so it cannot drift),
and the app serves it at /openapi.json. tests/test_fuzz.py fuzzes the running app from it."""

from __future__ import annotations

import re

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.testclient import TestClient

from bot.handoff.store import STATUSES
from bot.web.app import create_app, openapi_description
from bot.web.chat_api import SENDER_ID

METHODS = {"get", "post", "put", "patch", "delete", "options", "head", "trace"}


def _path(prefix: str, path: str) -> str:
    # Starlette's "{name:converter}" is OpenAPI's "{name}".
    return prefix + re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def app_operations(routes, prefix: str = "") -> set[tuple[str, str]]:
    """(method, path) for every route of the app, mounted apps included. HEAD, which
    Starlette adds to every GET route, is left out (OpenAPI lists it only when asked)."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Route):
            for method in route.methods or {"GET"}:
                if method != "HEAD":
                    found.add((method.lower(), _path(prefix, route.path)))
        elif isinstance(route, Mount):
            if isinstance(route.app, StaticFiles):
                found.add(("get", _path(prefix, route.path) + "/{path}"))
            else:
                found |= app_operations(route.routes, _path(prefix, route.path))
        else:  # a new kind of route: describe it, then teach this test about it
            raise AssertionError(f"unexpected route type {type(route).__name__}")
    return found


def spec_operations(spec: dict) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }


def test_openapi_lists_every_route_and_nothing_else(settings):
    app = create_app(settings, schedule_purge=False)
    spec = openapi_description()
    in_app, in_spec = app_operations(app.routes), spec_operations(spec)
    assert in_app - in_spec == set(), "routes missing from bot/web/openapi.yml"
    assert in_spec - in_app == set(), "bot/web/openapi.yml lists routes the app does not have"
    # The staff app is part of it (every page of it, and the sign-in form posts).
    assert ("post", "/staff/login") in in_spec and ("get", "/staff/") in in_spec
    assert len(in_spec) >= 25


def test_every_path_parameter_is_declared():
    spec = openapi_description()
    components = spec["components"]["parameters"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            declared = set()
            for parameter in operation.get("parameters", []) + item.get("parameters", []):
                if "$ref" in parameter:
                    parameter = components[parameter["$ref"].rsplit("/", 1)[1]]
                if parameter["in"] == "path":
                    declared.add(parameter["name"])
            assert declared == set(re.findall(r"\{(\w+)\}", path)), (method, path)


def test_openapi_matches_the_code_it_describes():
    spec = openapi_description()
    schemas = spec["components"]["schemas"]
    assert schemas["Status"]["enum"] == list(STATUSES)
    assert schemas["SenderId"]["pattern"] == SENDER_ID.pattern
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                assert operation.get("responses"), (method, path)
                assert operation.get("operationId"), (method, path)


def test_openapi_json_is_served(settings):
    with TestClient(create_app(settings, schedule_purge=False)) as client:
        reply = client.get("/openapi.json")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json() == openapi_description()


def test_method_not_allowed_says_what_is(settings):
    """RFC 9110: a 405 lists the allowed methods (found missing by the schemathesis fuzz)."""
    with TestClient(create_app(settings, schedule_purge=False)) as client:
        for method, path, allowed in [("PUT", "/healthz", {"GET", "HEAD"}),
                                      ("GET", "/api/chat", {"POST"}),
                                      ("POST", "/static/chat.css", {"GET", "HEAD"})]:
            reply = client.request(method, path)
            assert reply.status_code == 405, (method, path)
            # (Starlette names the methods of the first route with that path: /api/chat's
            # OPTIONS route is a second one, so its Allow says POST.)
            assert set(reply.headers["allow"].replace(" ", "").split(",")) == allowed
