"""The job path's hot statements (each transition's CTE, kept beside lifecycle.py), prepared once per connection.

PostgreSQL spends longer planning one of those CTEs than running it: the worker's finish-and-claim
plans in 1.1-3 ms and runs in 0.3 ms (EXPLAIN ANALYZE, docs/BENCHMARKS.md). Django binds parameters
client-side, so nothing it sends is ever prepared; these statements go through a cursor that binds
server-side and prepares, on Django's own connection: its transaction, its error wrapping, and its
statement counting and query capture (the wrappers every Django cursor has).
"""

from __future__ import annotations

from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.postgresql.base import CursorDebugWrapper, ServerBindingCursor
from django.db.backends.utils import CursorWrapper
from django.db.models import Model
from django.db.models.query import RawQuerySet
from django.db.models.sql.query import RawQuery


class _Preparing(ServerBindingCursor):
    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


def cursor(using: str = DEFAULT_DB_ALIAS):
    """A Django cursor (use it in `with`) whose statements are prepared on first use (a plain one where
    DB_PREPARED_STATEMENTS is off)."""
    connection = connections[using]
    if not settings.DB_PREPARED_STATEMENTS:
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = _Preparing(connection.connection)
    connection.validate_thread_sharing()
    return (_Logged if connection.queries_logged else CursorWrapper)(raw, connection)


class _Logged(CursorDebugWrapper):
    """Django's query log (DEBUG, CaptureQueriesContext) for a prepared statement: Django cannot read
    back what psycopg executed prepared, so the statement is logged as written, with its placeholders."""

    @contextmanager
    def debug_sql(self, sql=None, params=None, use_last_executed_query=False, many=False):
        with super().debug_sql(sql, params, use_last_executed_query=False, many=many):
            yield


class _PreparedRawQuery(RawQuery):
    def chain(self, using):
        return self.clone(using)

    def clone(self, using):
        return _PreparedRawQuery(self.sql, using, params=self.params)

    def _execute_query(self):
        self.cursor = cursor(self.using)
        self.cursor.execute(self.sql, self.params)


def raw(model: type[Model], sql: str, params: list, using: str = DEFAULT_DB_ALIAS) -> RawQuerySet:
    """`model.objects.raw(sql, params)`, prepared."""
    if not settings.DB_PREPARED_STATEMENTS:
        return model._default_manager.using(using).raw(sql, params)
    return RawQuerySet(sql, model=model, query=_PreparedRawQuery(sql, using, params=params), using=using)
