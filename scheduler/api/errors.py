"""Errors a user can cause, turned into 4xx answers in one place."""

from rest_framework.response import Response
from rest_framework.views import exception_handler

from scheduler.jobs.control import UnknownGpu
from scheduler.jobs.finding import BadFilter
from scheduler.jobs.results import NoResultFile
from scheduler.jobs.submission import SubmissionError


def handle(exc, context):
    if isinstance(exc, SubmissionError):
        return Response(exc.errors, status=exc.status)
    if isinstance(exc, BadFilter):
        return Response({exc.field: str(exc)}, status=400)
    if isinstance(exc, NoResultFile | UnknownGpu):
        return Response({"detail": str(exc)}, status=404)
    return exception_handler(exc, context)
