"""The shop's pages (Django templates), JSON API (pydantic) and XML feed
(lxml)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Avg, Count, Prefetch
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from lxml import etree

from . import services
from .models import Category, Order, OrderLine, Product
from .schemas import OrderLineOut, OrderOut, ProductOut

PAGE_SIZE = services.CONFIG["shop"]["page_size"]


def _products():
    return Product.objects.select_related("category").prefetch_related("tags")


def product_list(request):
    page = Paginator(_products(), PAGE_SIZE).get_page(request.GET.get("page"))
    categories = Category.objects.annotate(n=Count("products"))
    return render(request, "shop/product_list.html", {"page": page, "categories": categories})


def product_detail(request, pk: int):
    product = get_object_or_404(_products().annotate(rating=Avg("reviews__rating")), pk=pk)
    reviews = product.reviews.order_by("-created")[:20]
    return render(request, "shop/product_detail.html", {"product": product, "reviews": reviews})


def category(request, slug: str):
    cat = get_object_or_404(Category, slug=slug)
    products = _products().filter(category=cat)
    return render(request, "shop/category.html", {"category": cat, "products": products})


def _product_out(p: Product) -> dict:
    return ProductOut(
        id=p.pk,
        name=p.name,
        sku=p.sku,
        category=p.category.name,
        price=p.price,
        price_with_vat=p.price_with_vat,
        stock=p.stock,
        tags=[t.name for t in p.tags.all()],
        updated=p.updated,
    ).model_dump(mode="json")


def api_products(request):
    page = Paginator(_products(), PAGE_SIZE).get_page(request.GET.get("page"))
    return JsonResponse(
        {"products": [_product_out(p) for p in page], "pages": page.paginator.num_pages}
    )


@login_required
def api_orders(request):
    lines = Prefetch("lines", OrderLine.objects.select_related("product"))
    orders = Order.objects.filter(customer=request.user).prefetch_related(lines)[:20]
    out = []
    for order in orders:
        items = list(order.lines.all())
        total = order.total()
        out.append(
            OrderOut(
                id=order.pk,
                customer=request.user.get_username(),
                status=order.status,
                created=order.created,
                lines=[
                    OrderLineOut(
                        product=i.product.name, quantity=i.quantity, unit_price=i.unit_price
                    )
                    for i in items
                ],
                total=total,
                token=services.order_token(order.pk),
            ).model_dump(mode="json")
            | {"mail": services.order_mail(order, len(items), total)}
        )
    return JsonResponse({"orders": out})


def feed(request):
    rss = etree.Element("rss", version="2.0")
    channel = etree.SubElement(rss, "channel")
    etree.SubElement(channel, "title").text = "New products"
    for p in _products().order_by("-created")[:PAGE_SIZE]:
        item = etree.SubElement(channel, "item")
        etree.SubElement(item, "title").text = p.name
        etree.SubElement(item, "link").text = request.build_absolute_uri(p.get_absolute_url())
        etree.SubElement(item, "description").text = p.description
    body = etree.tostring(rss, xml_declaration=True, encoding="utf-8", pretty_print=True)
    return HttpResponse(body, content_type="application/rss+xml")
