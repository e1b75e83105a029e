"""Creates the benchmark's tables and data (``python -m preload_site.shop.seed``
with ``$PRELOAD_BENCH_DB`` set): a superuser, categories, products with tags
and reviews, orders."""

from __future__ import annotations

import os
import random
from decimal import Decimal

CATEGORIES = 12
PRODUCTS = 400
REVIEWS_PER_PRODUCT = 5
ORDERS = 60
ADMIN = ("admin", "bench-password")


def seed() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "preload_site.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", run_syncdb=True, verbosity=0)

    from django.contrib.auth import get_user_model

    from .models import Category, Order, OrderLine, Product, Review, Tag

    rnd = random.Random(1)
    user = get_user_model().objects.create_superuser(ADMIN[0], "admin@example.com", ADMIN[1])
    tags = [Tag.objects.create(name=f"tag-{i}") for i in range(20)]
    cats = [
        Category.objects.create(name=f"Category {i}", slug=f"cat-{i}") for i in range(CATEGORIES)
    ]
    products = Product.objects.bulk_create(
        Product(
            category=rnd.choice(cats),
            name=f"Product {i:04d}",
            sku=f"SKU-{i:06d}",
            description=" ".join(
                rnd.choice(["solid", "light", "blue", "steel", "eco"]) for _ in range(30)
            ),
            price=Decimal(rnd.randint(100, 99_999)) / 100,
            stock=rnd.randint(0, 500),
        )
        for i in range(PRODUCTS)
    )
    for p in products:
        p.tags.set(rnd.sample(tags, 3))
    Review.objects.bulk_create(
        Review(product=p, author=f"user{j}", rating=rnd.randint(1, 5), body="Good value. " * 10)
        for p in products
        for j in range(REVIEWS_PER_PRODUCT)
    )
    for _ in range(ORDERS):
        order = Order.objects.create(customer=user, status=rnd.choice(["new", "paid", "shipped"]))
        OrderLine.objects.bulk_create(
            OrderLine(order=order, product=p, quantity=rnd.randint(1, 4), unit_price=p.price)
            for p in rnd.sample(products, 4)
        )


if __name__ == "__main__":
    seed()
