"""The WSGI entry point: ``preload_site.wsgi:application``. Like many
production deployments it warms the URL resolver at import (which imports
every view module), so a preloading supervisor holds the whole project."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "preload_site.settings")
application = get_wsgi_application()

from django.urls import get_resolver  # noqa: E402  (after setup)

get_resolver().url_patterns  # noqa: B018  (imports the URLconf and the views)
