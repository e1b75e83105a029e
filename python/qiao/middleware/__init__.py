"""Portable WSGI middleware: each is both a WSGI server (to the app it wraps)
and a WSGI application (to the server), so it runs in any PEP 3333 server,
Qiao or not.

* :class:`Router` (``routing.py``): regular-expression routes, groups in
  ``wsgiorg.routing_args``.
* :class:`Mount` (``routing.py``): apps under path prefixes, the prefix
  moved to ``SCRIPT_NAME``.
* :class:`Static` (``static.py``): files from directories, with validators,
  ranges and precompressed siblings.
* :class:`Proxy` (``proxy.py``, ``_proxy_request.py``, ``upstream.py``): a
  load-balancing reverse proxy to HTTP upstreams.
* :class:`Compress` (``compress.py``): streaming zstd/brotli/gzip (the codec
  is Rust).
* :class:`Transform` (``transform.py``): whole-body rewriting by content type.

``_wsgi.py`` holds the plumbing they share (close propagation, the response
rewriter behind Compress and Transform) and ``_http.py`` the header parsing.
"""

from .compress import Compress
from .proxy import Proxy, UpstreamError
from .routing import Mount, Router
from .static import Static
from .transform import Transform

__all__ = ["Compress", "Mount", "Proxy", "Router", "Static", "Transform", "UpstreamError"]
