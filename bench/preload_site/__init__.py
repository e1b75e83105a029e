"""A small but realistic Django project for ``bench/preload_memory.py``:
the admin, auth, sessions, a shop app with a few related models, templates,
a JSON API validated with pydantic, an XML feed built with lxml, and the
heavier libraries a real project imports (cryptography, yaml, requests,
jinja2), so the heap a preloading supervisor shares is tens of MB.
"""
