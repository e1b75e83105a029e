"""What a real project keeps beside its views: signed order tokens
(cryptography), configuration (yaml), an outbound HTTP client (requests),
e-mail templates (jinja2)."""

from __future__ import annotations

import base64
import hashlib

import jinja2
import requests
import yaml
from cryptography.fernet import Fernet

CONFIG = yaml.safe_load(
    """
shop:
  currency: EUR
  vat: 0.20
  page_size: 40
  webhooks:
    - https://hooks.example.invalid/orders
"""
)
_FERNET = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"bench").digest()))
_MAIL = jinja2.Environment(autoescape=True).from_string(
    "Order {{ order.id }}: {{ lines }} lines, total {{ total }} {{ currency }}"
)
HTTP = requests.Session()  # for webhooks; never used by the benchmark


def order_token(order_id: int) -> str:
    return _FERNET.encrypt(str(order_id).encode()).decode()


def order_mail(order, lines: int, total) -> str:
    return _MAIL.render(order=order, lines=lines, total=total, currency=CONFIG["shop"]["currency"])
