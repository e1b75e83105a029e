"""A tiny Flask application served by Qiao.

Run it from this directory (``pip install flask`` first):

    qiao flask_app:app --bind 127.0.0.1:8000 --workers 2
"""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/")
def index():
    return "Hello from Flask on Qiao!\n"


@app.post("/echo")
def echo():
    """Answer with the JSON body that was sent."""
    return jsonify(request.get_json(force=True, silent=True))


@app.get("/hello/<name>")
def hello(name):
    return jsonify(greeting=f"Hello, {name}!", path=request.path)
