"""Falcon version of the framework test app (see fw/__init__.py)."""

import falcon


class Hello:
    def on_get(self, req, resp, name):
        greeting = req.get_param("greeting") or "Hello"
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = f"{greeting}, {name}!"

    on_head = on_get


class Form:
    def on_post(self, req, resp):
        form = req.get_media()
        resp.media = {"framework": "falcon", "a": form.get("a"), "b": form.get("b")}


class JsonBody:
    def on_post(self, req, resp):
        resp.media = {"framework": "falcon", "received": req.get_media()}


class Cookie:
    def on_get(self, req, resp):
        resp.set_cookie("served", "falcon", secure=False)
        resp.set_header("X-Framework", "falcon")
        resp.media = {"cookie": req.cookies.get("c"), "header": req.get_header("X-Req")}


app = falcon.App()
app.add_route("/hello/{name}", Hello())
app.add_route("/form", Form())
app.add_route("/json", JsonBody())
app.add_route("/cookie", Cookie())
