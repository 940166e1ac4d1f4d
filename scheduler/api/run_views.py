"""The API of `run` jobs: uploading a working dir, reading a job's log a page at a time, its outputs, the mounts."""

from __future__ import annotations

import re

from django.http import FileResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from scheduler.api import serializers as s
from scheduler.jobs import bundles, commands, joblog, outputs
from scheduler.jobs.models import Bundle, LogLine, Mount
from scheduler.jobs.results import NoResultFile
from scheduler.jobs.visibility import visible_jobs

DIGEST = re.compile(r"[0-9a-f]{64}\Z")


@extend_schema(methods=["GET"], responses={200: s.BundleSerializer})
@extend_schema(
    methods=["PUT"],
    request={"application/octet-stream": OpenApiTypes.BINARY},
    responses={201: s.BundleSerializer, 400: OpenApiTypes.OBJECT, 413: OpenApiTypes.OBJECT},
)
@api_view(["GET", "PUT"])
def bundle(request, digest: str):
    """GET: whether you uploaded this working dir (200) or not (404). PUT: upload it (a tar.gz whose sha256
    is `digest`), at most BUNDLE_MAX_BYTES."""
    if not DIGEST.match(digest):
        raise ValidationError({"digest": "must be 64 lowercase hex digits (a sha256)"})
    if request.method == "GET":
        return Response(s.BundleSerializer(get_object_or_404(Bundle, owner=request.user, digest=digest)).data)
    declared = request.META.get("CONTENT_LENGTH")
    stored = bundles.store(request.user, digest, request.stream, int(declared) if declared else None)
    return Response(s.BundleSerializer(stored).data, status=status.HTTP_201_CREATED)


@extend_schema(
    parameters=[
        OpenApiParameter("after", int, description="lines numbered above this (default 0)"),
        OpenApiParameter("limit", int, description=f"at most this many (default and most {joblog.PAGE_MAX})"),
        OpenApiParameter("tail", int, description="instead: the last N lines"),
    ],
    responses={200: s.LogPageSerializer},
)
@api_view(["GET"])
def job_log(request, pk: int):
    """A page of the job's stdout/stderr lines by line number; follow a running job with `after=<last>`."""
    job = get_object_or_404(visible_jobs(request.user), pk=pk)
    after, limit, tail = (
        _count(request, name, default) for name, default in (("after", 0), ("limit", 1000), ("tail", 0))
    )
    lines = joblog.tail(job.id, tail) if tail else joblog.page(job.id, after, limit)
    last = LogLine.objects.filter(job=job).order_by("-n").values_list("n", flat=True).first() or 0
    return Response({"lines": s.LogLineSerializer(lines, many=True).data, "last": last, "final": job.is_final})


def _count(request, name: str, default: int) -> int:
    text = request.query_params.get(name, "")
    if not text:
        return default
    if not text.isdigit() or int(text) > 2**31:
        raise ValidationError({name: "must be a whole number of at least 0"})
    return int(text)


@extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR})
@api_view(["GET"])
def job_log_text(request, pk: int):
    """The job's whole log as a text file, streamed."""
    job = get_object_or_404(visible_jobs(request.user), pk=pk)
    lines = LogLine.objects.filter(job=job).order_by("n").values_list("text", flat=True).iterator(chunk_size=2000)
    response = StreamingHttpResponse((f"{line}\n" for line in lines), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="job-{job.id}.log"'
    return response


@extend_schema(responses={200: s.OutputsSerializer})
@api_view(["GET"])
def job_outputs(request, pk: int):
    """The files the job wrote under $GPUQ_OUTPUTS and kept, with their sizes."""
    job = get_object_or_404(visible_jobs(request.user), pk=pk)
    files = outputs.listing(job)
    url = reverse("api-job-outputs-archive", args=[job.id]) if files else None
    expire = job.outputs_expire_at if files else None
    return Response({"files": files, "bytes": job.outputs_bytes, "expire_at": expire, "archive_url": url})


@extend_schema(responses={(200, "application/gzip"): OpenApiTypes.BINARY})
@api_view(["GET"])
def job_outputs_archive(request, pk: int):
    """The job's kept outputs as one .tar.gz (a folder job-<id>/)."""
    job = get_object_or_404(visible_jobs(request.user), pk=pk)
    if not outputs.listing(job):
        raise NoResultFile(outputs.why_none(job))
    return FileResponse(outputs.archive(job), as_attachment=True, filename=f"job-{job.id}-outputs.tar.gz")


@extend_schema(responses={200: s.MountSerializer(many=True)})
@api_view(["GET"])
def mounts(request):
    """The mounts you may ask for by name (`--mount NAME`); staff see all."""
    shown = Mount.objects.all() if request.user.is_staff else commands.usable_by(request.user)
    return Response(s.MountSerializer(shown, many=True).data)
