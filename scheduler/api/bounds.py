"""What bounds the cost of one request before any view runs: JSON nesting, page sizes, list lengths."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers, serializers
from rest_framework.exceptions import ParseError
from rest_framework.pagination import LimitOffsetPagination

from scheduler.jobs.models import MAX_ID

MAX_JSON_DEPTH = 32  # far more than any job spec needs; Python's own parser overflows near 1,000
MAX_PAGE = 1000


class JSONParser(parsers.JSONParser):
    """DRF's parser, refusing bodies nested deeper than MAX_JSON_DEPTH with a 400 (the standard
    library raises RecursionError there, which DRF would answer with a 500)."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested more than {MAX_JSON_DEPTH} levels deep") from None
        if depth(data) > MAX_JSON_DEPTH:
            raise ParseError(f"JSON parse error - nested more than {MAX_JSON_DEPTH} levels deep")
        return data


def depth(value: Any) -> int:
    """How deeply lists and objects nest in `value`, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


class Pagination(LimitOffsetPagination):
    """`limit` above MAX_PAGE is read as MAX_PAGE (a huge one overflowed the database's LIMIT)."""

    max_limit = MAX_PAGE

    def get_offset(self, request) -> int:
        return min(super().get_offset(request), MAX_ID)


class CappedListField(serializers.ListField):
    """A ListField that checks its length before validating a single item: a batch over the cap
    costs one comparison, not 10,000 item validations and an answer listing each."""

    def to_internal_value(self, data: Any) -> list:
        if self.max_length is not None and isinstance(data, list) and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)
