"""Django version of the framework test app (see fw/__init__.py).

Settings, URLconf and views in one file; ``application`` comes from
``get_wsgi_application()``.
"""

import json

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="qiao-e2e-not-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    USE_TZ=True,
)

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402


def hello(request, name):
    greeting = request.GET.get("greeting", "Hello")
    return HttpResponse(f"{greeting}, {name}!", content_type="text/plain")


def form(request):
    return JsonResponse(
        {"framework": "django", "a": request.POST.get("a"), "b": request.POST.get("b")}
    )


def json_body(request):
    return JsonResponse({"framework": "django", "received": json.loads(request.body)})


def cookie(request):
    resp = JsonResponse(
        {"cookie": request.COOKIES.get("c"), "header": request.headers.get("X-Req")}
    )
    resp.set_cookie("served", "django")
    resp["X-Framework"] = "django"
    return resp


urlpatterns = [
    path("hello/<str:name>", hello),
    path("form", form),
    path("json", json_body),
    path("cookie", cookie),
]

application = get_wsgi_application()
