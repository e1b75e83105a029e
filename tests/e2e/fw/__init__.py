"""Small framework applications (Flask, Django, Falcon, Bottle) for test_frameworks.py.

Each module exposes the same four routes with a WSGI callable:
``GET /hello/<name>?greeting=``, ``POST /form``, ``POST /json`` and
``GET /cookie`` (echoes a request cookie and header, sets a cookie and a
header); any other path is the framework's own 404.
"""
