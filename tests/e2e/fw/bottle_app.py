"""Bottle version of the framework test app (see fw/__init__.py)."""

import bottle

app = bottle.Bottle()


@app.get("/hello/<name>")
def hello(name):
    greeting = bottle.request.query.get("greeting", "Hello")
    return f"{greeting}, {name}!"


@app.post("/form")
def form():
    forms = bottle.request.forms
    return {"framework": "bottle", "a": forms.getunicode("a"), "b": forms.getunicode("b")}


@app.post("/json")
def json_body():
    return {"framework": "bottle", "received": bottle.request.json}


@app.get("/cookie")
def cookie():
    bottle.response.set_cookie("served", "bottle")
    bottle.response.set_header("X-Framework", "bottle")
    return {"cookie": bottle.request.get_cookie("c"), "header": bottle.request.get_header("X-Req")}
