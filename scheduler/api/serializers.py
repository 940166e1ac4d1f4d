"""The API's shapes. Validation against a kind's schema happens once, in jobs.submission."""

import copy

from django.conf import settings
from rest_framework import serializers

from gpu_tasks.container import check_image
from scheduler.api.bounds import CappedListField
from scheduler.jobs import forecast, results
from scheduler.jobs.models import MAX_ID, Bundle, ContainerImage, Job, JobArray, JobEvent, LogLine, Mount
from scheduler.jobs.visibility import ahead_of


class SchedulingSerializer(serializers.Serializer):
    """What every submission says: the kind, its parameters, and how to schedule it."""

    kind = serializers.CharField(max_length=40, help_text="a job kind from /api/kinds/")
    params = serializers.DictField(required=False, default=dict, help_text="the kind's parameters")
    priority = serializers.IntegerField(required=False, default=0, min_value=-1000, max_value=1000)
    time_limit = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=10**7, help_text="seconds"
    )
    gpus = serializers.IntegerField(
        required=False, default=1, min_value=1, max_value=1000, help_text="GPUs of one host it runs on at once"
    )
    name = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=100, help_text="your name for it"
    )
    tags = serializers.ListField(
        child=serializers.RegexField(r"^[-\w.:=/]{1,40}$", help_text="letters, digits and -_.:=/ only"),
        required=False,
        default=list,
        max_length=20,
        help_text="your labels, shown in every list",
    )


class JobSpecSerializer(SchedulingSerializer):
    after = CappedListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        default=list,
        max_length=1000,
        help_text="ids of jobs that must succeed first",
    )


class BatchSerializer(serializers.Serializer):
    jobs = CappedListField(child=JobSpecSerializer(), min_length=1, max_length=settings.BATCH_MAX_JOBS)


class ArraySpecSerializer(SchedulingSerializer):
    grid = serializers.DictField(
        child=CappedListField(min_length=1, max_length=1000),
        help_text='lists of values, e.g. {"n": [1024, 2048]}; `params` are shared by every member',
    )


class BuiltOnce:
    """A ModelSerializer whose fields are built from the model once per class, then copied for each
    instance: building a job's ~35 fields took 0.42 ms of every answer, copying them takes 0.2 ms."""

    _built: dict[type, dict] = {}

    def get_fields(self) -> dict:
        cls = type(self)
        if cls not in BuiltOnce._built:
            BuiltOnce._built[cls] = super().get_fields()  # type: ignore[misc]
        return copy.deepcopy(BuiltOnce._built[cls])


class EventSerializer(BuiltOnce, serializers.ModelSerializer):
    class Meta:
        model = JobEvent
        fields = ["at", "status", "message"]


BRIEF_FIELDS = [
    "id",
    "kind",
    "name",
    "tags",
    "runner",
    "params",
    "status",
    "priority",
    "time_limit",
    "memory_estimate",
    "work_estimate",
    "gpus",
    "created_at",
]


class JobBriefSerializer(BuiltOnce, serializers.ModelSerializer):
    """What a batch submission answers for each job: no relations, so 10,000 jobs cost no extra query."""

    class Meta:
        model = Job
        fields = BRIEF_FIELDS
        read_only_fields = fields


class JobSerializer(BuiltOnce, serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    after = serializers.ListField(child=serializers.IntegerField(), source="after_ids", read_only=True)
    gpu_seconds = serializers.FloatField(read_only=True, allow_null=True)
    result_url = serializers.SerializerMethodField(help_text="where the result array downloads as .npy, or null")

    class Meta:
        model = Job
        fields = BRIEF_FIELDS + [
            "owner",
            "after",
            "array",
            "queue",
            "gpu_uuid",
            "gang",
            "route_reason",
            "wait_reason",
            "attempts",
            "result",
            "error",
            "error_kind",
            "queued_at",
            "started_at",
            "finished_at",
            "gpu_seconds",
            "result_url",
            "outputs_bytes",
            "outputs_expire_at",
        ]
        read_only_fields = fields

    def get_result_url(self, job: Job) -> str | None:
        return results.url(job)


class SubmittedJobSerializer(JobSerializer):
    warnings = serializers.SerializerMethodField(help_text="what to know though nothing was wrong")

    class Meta(JobSerializer.Meta):
        fields = JobSerializer.Meta.fields + ["warnings"]
        read_only_fields = fields

    def get_warnings(self, job: Job) -> list[str]:
        return self.context.get("warnings", [])


class JobDetailSerializer(JobSerializer):
    events = EventSerializer(many=True, read_only=True)
    ahead = serializers.SerializerMethodField(help_text="waiting jobs before this one (null unless waiting)")
    forecast = serializers.SerializerMethodField(
        help_text="a waiting job's position in release order, estimated start (epoch s), GPUs and a sentence"
    )

    class Meta(JobSerializer.Meta):
        fields = JobSerializer.Meta.fields + ["events", "ahead", "forecast"]
        read_only_fields = fields

    def get_ahead(self, job: Job) -> dict[str, int] | None:
        return ahead_of(job)

    def get_forecast(self, job: Job) -> dict | None:
        return forecast.of(job)


def job_detail(job: Job) -> dict:
    """`JobDetailSerializer(job).data`, from one serializer built once: building its fields (and its
    events') took 1.1 ms of the 1.3 ms each answer cost. Its fields read no context and keep no state
    of a call, so the one instance serves every thread."""
    return _built(JobDetailSerializer).to_representation(job)


def submitted_job(job: Job, warnings: list[str]) -> dict:
    """`SubmittedJobSerializer(job, context={"warnings": ...}).data`, as `job_detail` is built: copying
    its fields was 0.4 ms of each POST."""
    return _built(JobSerializer).to_representation(job) | {"warnings": warnings}


def validated(serializer: type[serializers.Serializer], data) -> dict:
    """`serializer(data=data)`'s validated data, or the ValidationError `is_valid` would raise, from one
    instance built once (as `job_detail`): validation keeps nothing on the instance or its fields, and
    copying the fields for each request was 0.3 ms of a POST."""
    return _built(serializer).run_validation(data)


_instances: dict[type, serializers.Serializer] = {}


def _built(serializer: type[serializers.Serializer]) -> serializers.Serializer:
    if serializer not in _instances:  # two threads' first calls may build one twice, alike
        _instances[serializer] = serializer()
    return _instances[serializer]


class ArraySerializer(serializers.ModelSerializer):
    jobs = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    counts = serializers.SerializerMethodField()

    class Meta:
        model = JobArray
        fields = ["id", "kind", "grid", "created_at", "jobs", "counts"]

    def get_counts(self, array: JobArray) -> dict[str, int]:
        counts: dict[str, int] = {}
        for status in array.jobs.values_list("status", flat=True):
            counts[status] = counts.get(status, 0) + 1
        return counts


class ParamSchemaSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    schema = serializers.DictField()


class SnapshotField(serializers.DictField):
    """A GPU's live Snapshot (scheduler/fleet/snapshot.py), as the JSON its worker published."""

    def to_representation(self, value):
        return value.to_dict()


class GpuSerializer(serializers.Serializer):
    uuid = serializers.CharField()
    host = serializers.CharField()
    name = serializers.CharField()
    queue = serializers.CharField()
    kind = serializers.CharField()
    alive = serializers.BooleanField()
    draining = serializers.BooleanField()
    drain_reason = serializers.CharField(allow_blank=True)
    healthy = serializers.BooleanField(help_text="false: out of routing until staff resume it")
    health_reason = serializers.CharField(allow_blank=True, help_text="NVML's fault, or the CUDA errors of its jobs")
    queued = serializers.IntegerField()
    running_job = serializers.IntegerField(allow_null=True)
    held_by = serializers.IntegerField(allow_null=True, help_text="the multi-GPU job holding this GPU")
    reserved_for = serializers.IntegerField(allow_null=True, help_text="the waiting job this GPU is reserved for")
    holder = serializers.DictField(
        required=False, allow_null=True, help_text="who runs what there: owner, kind, and id (yours, or staff's)"
    )
    snapshot = SnapshotField(allow_null=True)


class HistoryPointSerializer(serializers.Serializer):
    t = serializers.FloatField()
    memory_used = serializers.IntegerField(allow_null=True)
    utilization = serializers.FloatField(allow_null=True)
    temperature = serializers.FloatField(allow_null=True)


class CountsSerializer(serializers.Serializer):
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="status -> jobs")


class DrainSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, default="drained by staff", max_length=200)


class ContainerImageSerializer(serializers.ModelSerializer):
    added_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ContainerImage
        fields = ["id", "image", "allow_network", "allow_root", "description", "added_by", "created_at"]
        read_only_fields = ["created_at"]

    def validate_image(self, image: str) -> str:
        problem = check_image(image)
        if problem:
            raise serializers.ValidationError(problem)
        return image


class LogLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = LogLine
        fields = ["n", "at", "stream", "text"]


class LogPageSerializer(serializers.Serializer):
    lines = LogLineSerializer(many=True)
    last = serializers.IntegerField(help_text="the number of the last line stored so far")
    final = serializers.BooleanField(help_text="the job has ended: no line will be added")


class OutputFileSerializer(serializers.Serializer):
    path = serializers.CharField()
    bytes = serializers.IntegerField()


class OutputsSerializer(serializers.Serializer):
    files = OutputFileSerializer(many=True)
    bytes = serializers.IntegerField()
    expire_at = serializers.DateTimeField(allow_null=True)
    archive_url = serializers.CharField(allow_null=True, help_text="all of them as one .tar.gz")


class BundleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Bundle
        fields = ["digest", "size", "created_at"]


class MountSerializer(serializers.ModelSerializer):
    class Meta:
        model = Mount
        fields = ["name", "kind", "read_only", "path", "description"]
