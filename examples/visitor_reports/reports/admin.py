from __future__ import annotations

from django.contrib import admin

from reports.models import VisitorReport


@admin.register(VisitorReport)
class VisitorReportAdmin(admin.ModelAdmin):
    list_display = ("visitor_id", "page", "visits", "window_start", "window_end")
    list_filter = ("page", "window_end")
    search_fields = ("visitor_id", "page")
