from __future__ import annotations

from django.db import models


class VisitorReport(models.Model):
    """How often one visitor viewed one page in the window [window_start, window_end)."""

    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    visitor_id = models.CharField(max_length=64)
    page = models.CharField(max_length=500)
    visits = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-window_end", "visitor_id", "page"]
        constraints = [
            models.UniqueConstraint(
                fields=["window_start", "window_end", "visitor_id", "page"],
                name="one_report_per_window_visitor_page",
            )
        ]

    def __str__(self) -> str:
        return f"{self.visitor_id} {self.page}: {self.visits}"
