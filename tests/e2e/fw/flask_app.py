"""Flask version of the framework test app (see fw/__init__.py)."""

from flask import Flask, jsonify, make_response, request

app = Flask(__name__)


@app.get("/hello/<name>")
def hello(name):
    greeting = request.args.get("greeting", "Hello")
    return f"{greeting}, {name}!"


@app.post("/form")
def form():
    return jsonify(framework="flask", a=request.form.get("a"), b=request.form.get("b"))


@app.post("/json")
def json_body():
    return jsonify(framework="flask", received=request.get_json())


@app.get("/cookie")
def cookie():
    resp = make_response(
        jsonify(cookie=request.cookies.get("c"), header=request.headers.get("X-Req"))
    )
    resp.set_cookie("served", "flask")
    resp.headers["X-Framework"] = "flask"
    return resp
