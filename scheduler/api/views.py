"""The REST API: short views; the work is in scheduler.jobs."""

from django.db.models import QuerySet
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAdminUser, IsAuthenticated
from rest_framework.response import Response

from gpu_tasks.params import json_schema
from gpu_tasks.registry import KINDS
from scheduler import stages
from scheduler.api import serializers as s
from scheduler.jobs import changes, control, dependencies, detail, finding, labqueue, limits, results, submission
from scheduler.jobs.models import FINAL, ContainerImage, Job, JobArray, Status
from scheduler.jobs.visibility import fleet_seen_by, visible_arrays, visible_jobs

WAIT_MAX_S = 30  # a long poll holds one of the web server's threads for at most this long


class JobList(generics.ListAPIView):
    serializer_class = s.JobSerializer

    def get_queryset(self) -> QuerySet[Job]:
        jobs = visible_jobs(self.request.user).select_related("owner")
        query = {k: self.request.query_params.get(k, "") for k in ("status", "kind", "q")}
        return finding.filtered(jobs, **query).order_by("-created_at", "-id")

    @extend_schema(
        parameters=[
            OpenApiParameter("status", enum=Status.values, description="only jobs in this status"),
            OpenApiParameter("kind", description="only jobs of this kind (/api/kinds/)"),
            OpenApiParameter("q", description="search: a job id, part of a kind, or an owner's user name"),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def paginate_queryset(self, queryset):
        return dependencies.with_after_ids(super().paginate_queryset(queryset))

    @extend_schema(request=s.JobSpecSerializer, responses={201: s.SubmittedJobSerializer})
    def post(self, request):
        stages.mark("submit.view")
        spec = _valid(s.JobSpecSerializer, request.data)
        job = submission.submit(request.user, [spec])[0]
        warnings = limits.warnings(spec, job.time_limit)
        return Response(s.submitted_job(job, warnings), status=status.HTTP_201_CREATED)


class JobDetail(generics.RetrieveAPIView):
    serializer_class = s.JobDetailSerializer

    def get_queryset(self) -> QuerySet[Job]:
        return visible_jobs(self.request.user).select_related("owner").prefetch_related("events")


@extend_schema(
    parameters=[
        OpenApiParameter(
            "status", str, description="the status you saw last; answer once it differs (default: once final)"
        ),
        OpenApiParameter(
            "timeout", float, description=f"seconds to wait at most (0 to {WAIT_MAX_S}, default {WAIT_MAX_S})"
        ),
    ],
    responses={200: s.JobDetailSerializer},
)
@api_view(["GET"])
def wait_job(request, pk: int):
    """The job, as soon as its status is no longer `status` or it is final, or after `timeout` seconds
    as it is then: a long poll woken by the job's own changes, instead of polling."""
    seen, timeout = request.query_params.get("status", ""), _timeout(request.query_params.get("timeout"))

    def answers(status: str) -> bool:
        return status in FINAL or bool(seen and status != seen)

    def check() -> tuple[bool, Job]:
        # The whole job at each change: the one it waits for is answered without another read.
        stages.mark("wait.begun")
        job = detail.visible(request.user, pk)
        stages.mark("wait.read")
        return answers(job.status), job

    answer = s.job_detail(changes.wait_for(pk, timeout, check, answers))
    stages.mark("wait.answered")
    return Response(answer)


def _timeout(text: str | None) -> float:
    try:
        value = WAIT_MAX_S if text is None else float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= WAIT_MAX_S:
        raise ValidationError({"timeout": f"must be a number of seconds from 0 to {WAIT_MAX_S}, got {text!r}"})
    return value


# 404 (no such job, or no saved array: its `detail` says which) is left out of the schema like the other
# views' 404s, which Django's URL resolver answers in HTML for ids the route does not match.
@extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
@api_view(["GET"])
def job_result(request, pk: int):
    """The job's result array as a NumPy `.npy` file (`numpy.load` reads it)."""
    job = get_object_or_404(visible_jobs(request.user), pk=pk)
    return FileResponse(results.stored(job).open("rb"), as_attachment=True, filename=f"job-{job.id}.npy")


@extend_schema(request=s.BatchSerializer, responses={201: s.JobBriefSerializer(many=True)})
@api_view(["POST"])
def submit_batch(request):
    batch = _valid(s.BatchSerializer, request.data)
    jobs = submission.submit(request.user, batch["jobs"], as_batch=True)
    return Response({"jobs": s.JobBriefSerializer(jobs, many=True).data}, status=status.HTTP_201_CREATED)


@extend_schema(request=None, responses={200: s.JobSerializer})
@api_view(["POST"])
def cancel_job(request, pk: int):
    job = get_object_or_404(visible_jobs(request.user), pk=pk)
    if job.is_final:
        return Response({"detail": f"job {job.id} already {job.status}"}, status=status.HTTP_409_CONFLICT)
    control.cancel(job, by=request.user.username)
    job.refresh_from_db()
    return Response(s.JobSerializer(job).data)


@extend_schema(request=s.ArraySpecSerializer, responses={201: s.ArraySerializer})
@api_view(["POST"])
def submit_array(request):
    spec = _valid(s.ArraySpecSerializer, request.data)
    array, _ = submission.submit_array(
        request.user,
        spec["kind"],
        spec["params"],
        spec["grid"],
        priority=spec["priority"],
        time_limit=spec["time_limit"],
        gpus=spec["gpus"],
    )
    return Response(s.ArraySerializer(array).data, status=status.HTTP_201_CREATED)


class ArrayDetail(generics.RetrieveAPIView):
    serializer_class = s.ArraySerializer

    def get_queryset(self) -> QuerySet[JobArray]:
        return visible_arrays(self.request.user)


@extend_schema(request=None, responses={200: s.ArraySerializer})
@api_view(["POST"])
def cancel_array(request, pk: int):
    array = get_object_or_404(visible_arrays(request.user), pk=pk)
    control.cancel_array(array, by=request.user.username)
    return Response(s.ArraySerializer(array).data)


@extend_schema(responses={200: s.ParamSchemaSerializer(many=True)})
@api_view(["GET"])
def kinds(request):
    shown = [k for k in KINDS.values() if request.user.is_staff or not k.staff_only]
    return Response(
        [{"name": k.name, "title": k.title, "description": k.description, "schema": json_schema(k)} for k in shown]
    )


@extend_schema(responses={200: s.GpuSerializer(many=True)})
@api_view(["GET"])
def gpus(request):
    return Response(
        s.GpuSerializer(
            labqueue.with_holders(request.user, fleet_seen_by(request.user, control.fleet_view())), many=True
        ).data
    )


@extend_schema(responses={200: s.HistoryPointSerializer(many=True)})
@api_view(["GET"])
def gpu_history(request, uuid: str):
    """The GPU's last minutes of telemetry (a point a second), oldest first, for charts."""
    return Response(control.history(uuid))


@extend_schema(responses={200: s.CountsSerializer})
@api_view(["GET"])
def job_counts(request):
    """How many of the jobs you can see are in each status."""
    return Response(control.counts(visible_jobs(request.user)))


@extend_schema(request=s.DrainSerializer, responses={200: s.GpuSerializer})
@api_view(["POST"])
@permission_classes([IsAdminUser])
def drain_gpu(request, uuid: str):
    reason = _valid(s.DrainSerializer, request.data)["reason"]
    return Response(s.GpuSerializer(control.drain(uuid, reason)).data)


@extend_schema(request=None, responses={200: s.GpuSerializer})
@api_view(["POST"])
@permission_classes([IsAdminUser])
def resume_gpu(request, uuid: str):
    return Response(s.GpuSerializer(control.resume(uuid)).data)


class StaffWrites(BasePermission):
    """Everyone signed in reads; only staff change."""

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or request.user.is_staff


class ImageList(generics.ListCreateAPIView):
    """The allowlist of images that `container` jobs may run."""

    queryset = ContainerImage.objects.select_related("added_by")
    serializer_class = s.ContainerImageSerializer
    permission_classes = [IsAuthenticated, StaffWrites]

    def perform_create(self, serializer) -> None:
        serializer.save(added_by=self.request.user)


class ImageDetail(generics.RetrieveUpdateDestroyAPIView):
    queryset = ContainerImage.objects.select_related("added_by")
    serializer_class = s.ContainerImageSerializer
    permission_classes = [IsAuthenticated, StaffWrites]


def _valid(serializer_class, data) -> dict:
    return s.validated(serializer_class, data)
