"""URLs: the shop's pages and API, the admin, the sitemap."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.sitemaps.views import sitemap
from django.urls import path

from .shop import views
from .shop.sitemaps import ProductSitemap

urlpatterns = [
    path("", views.product_list, name="product-list"),
    path("product/<int:pk>/", views.product_detail, name="product-detail"),
    path("category/<slug:slug>/", views.category, name="category"),
    path("api/products", views.api_products, name="api-products"),
    path("api/orders", views.api_orders, name="api-orders"),
    path("feed.xml", views.feed, name="feed"),
    path("sitemap.xml", sitemap, {"sitemaps": {"products": ProductSitemap}}),
    path("admin/", admin.site.urls),
]
