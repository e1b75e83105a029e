from __future__ import annotations

from django.contrib import admin

from .models import Category, Order, OrderLine, Product, Review, Tag


class ReviewInline(admin.TabularInline):
    model = Review
    extra = 0


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    raw_id_fields = ["product"]


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "parent"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "sku", "category", "price", "stock", "updated"]
    list_filter = ["category", "tags"]
    search_fields = ["name", "sku", "description"]
    inlines = [ReviewInline]
    filter_horizontal = ["tags"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "status", "created"]
    list_filter = ["status"]
    inlines = [OrderLineInline]


admin.site.register(Tag)
