"""The JSON API's shapes, validated with pydantic."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field


class ProductOut(BaseModel):
    id: int
    name: str
    sku: str
    category: str
    price: Decimal
    price_with_vat: Decimal
    stock: int = Field(ge=0)
    tags: list[str]
    updated: datetime


class OrderLineOut(BaseModel):
    product: str
    quantity: int
    unit_price: Decimal


class OrderOut(BaseModel):
    id: int
    customer: str
    status: str
    created: datetime
    lines: list[OrderLineOut]
    total: Decimal
    token: str
