"""The job list's pages: the total counted up to a cap, since an exact COUNT(*) over a million rows
costs more than the page itself (~12 ms of a 34 ms list call at 110,000 jobs, BENCHMARKS.md)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.response import Response

from scheduler.api.bounds import MAX_PAGE, Pagination


class CappedCountPagination(Pagination):
    """`count` is exact up to LIST_COUNT_CAP jobs past the page's offset; beyond that it is
    offset + LIST_COUNT_CAP and `count_capped` says so."""

    capped = False

    @property
    def max_limit(self) -> int:  # type: ignore[override]
        return min(MAX_PAGE, settings.LIST_COUNT_CAP)  # a page never ends past the counted rows

    def get_count(self, queryset) -> int:
        cap, offset = settings.LIST_COUNT_CAP, self.get_offset(self.request)
        # Any order counts the same rows: without it PostgreSQL counts from a seq scan, not the list's index.
        seen = queryset.order_by()[offset : offset + cap + 1].count()
        self.capped = seen > cap
        return offset + min(seen, cap)

    def get_paginated_response(self, data) -> Response:
        response = super().get_paginated_response(data)
        response.data["count_capped"] = self.capped
        return response

    def get_paginated_response_schema(self, schema: dict) -> dict:
        shape = super().get_paginated_response_schema(schema)
        shape["properties"]["count_capped"] = {
            "type": "boolean",
            "description": f"more jobs exist than counted: `count` stops {settings.LIST_COUNT_CAP} past the offset",
        }
        return shape
