"""Jobs are rows: the database is the record of every job's status, timeline and result."""

from __future__ import annotations

from functools import cached_property

from django.conf import settings
from django.db import models
from django.utils import timezone


class Status(models.TextChoices):
    WAITING = "waiting"  # in the database, not yet released to a GPU
    QUEUED = "queued"  # released to one GPU's queue
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
HELD = (Status.QUEUED, Status.RUNNING)  # what a GPU holds
UNFINISHED = (Status.WAITING, *HELD)  # counted with an index on (owner, status), where `not FINAL` scans all
MAX_ID = 2**63 - 1  # BigAutoField: SQLite's INTEGER and PostgreSQL's bigint hold no more


class Quota(models.Model):
    """Per-user limits set by staff; a user without a row gets the settings' defaults."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota")
    max_gpus = models.PositiveIntegerField(default=0, help_text="GPUs used at once; 0 means no limit")
    max_waiting = models.PositiveIntegerField(default=0, help_text="jobs not yet finished; 0: the default")
    max_priority = models.IntegerField(null=True, blank=True, help_text="highest priority allowed")

    def __str__(self) -> str:
        return f"quota of {self.user}"


class ContainerImage(models.Model):
    """An image staff allow `container` jobs to run; anything else is refused at submission."""

    image = models.CharField(max_length=300, unique=True, help_text="as the engine names it, e.g. team/train:1.2")
    allow_network = models.BooleanField(default=False, help_text="give its containers a network (default: none)")
    allow_root = models.BooleanField(default=False, help_text="let its containers run as root (default: never)")
    description = models.CharField(max_length=300, blank=True)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["image"]

    def __str__(self) -> str:
        return self.image


class GroupLimits(models.Model):
    """Bounds staff set per user group; a user in several groups gets the most generous."""

    group = models.OneToOneField("auth.Group", on_delete=models.CASCADE, related_name="job_limits")
    max_time_limit = models.PositiveIntegerField(help_text="longest time limit its members may ask for, seconds")

    def __str__(self) -> str:
        return f"limits of {self.group}"


class JobArray(models.Model):
    """One submission of a kind over a parameter grid."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="arrays")
    kind = models.CharField(max_length=40)
    grid = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)


class Job(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=40)
    params = models.JSONField(default=dict)
    name = models.CharField(max_length=100, blank=True, help_text="the owner's name for the job")
    tags = models.JSONField(default=list, blank=True, help_text="the owner's labels")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING)
    priority = models.IntegerField(default=0)
    time_limit = models.PositiveIntegerField(help_text="seconds")
    memory_estimate = models.BigIntegerField(default=0, help_text="bytes of GPU memory")
    work_estimate = models.FloatField(default=0.0, help_text="expected GPU seconds")
    gpus = models.PositiveSmallIntegerField(default=1, help_text="GPUs of one host it runs on at once")
    after = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="dependents")
    array = models.ForeignKey(JobArray, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")

    queue = models.CharField(max_length=120, blank=True, help_text="the GPU queue it was released to")
    gpu_uuid = models.CharField(max_length=80, blank=True)
    # A job on several GPUs: all of them, the leader (its `queue`) first, as [{"queue", "uuid"}, ...];
    # empty for one GPU. They are held while the job is queued or running, and freed with its status.
    gang = models.JSONField(default=list, blank=True)
    route_reason = models.CharField(max_length=300, blank=True)
    wait_reason = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease = models.CharField(max_length=64, blank=True, help_text="the attempt allowed to record a result")

    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    error_kind = models.CharField(max_length=20, blank=True)

    # Where a `run` job's command runs: "local" (a process of the user who started the system) or "container".
    runner = models.CharField(max_length=10, blank=True)
    outputs_bytes = models.BigIntegerField(default=0, help_text="bytes of outputs kept with the job")
    outputs_expire_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The job list's order, for one owner and for staff who see all (100k jobs: 102 ms -> <1 ms).
            models.Index(fields=["owner", "-created_at", "-id"]),
            models.Index(fields=["-created_at", "-id"]),
            models.Index(fields=["owner", "status"]),
            models.Index(fields=["status", "-priority", "created_at"]),
            models.Index(fields=["queue", "status"]),
            models.Index(fields=["finished_at"]),
        ]

    def __str__(self) -> str:
        return f"job {self.id} ({self.kind}, {self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    @cached_property
    def after_ids(self) -> list[int]:
        """Ids of the jobs this one runs after, ascending: one query, unless set where the job was
        stored or listed with others (dependencies.with_after_ids: one query for a whole page)."""
        return sorted(self.after.values_list("id", flat=True))

    @property
    def gpu_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class JobEvent(models.Model):
    """A change of status or a log line, with its time: the job page's timeline and log."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["job", "at"])]


class LogLine(models.Model):
    """One line of a job's stdout/stderr, numbered from 1 so a reader pages by number, not by offset."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="log_lines")
    n = models.PositiveIntegerField()
    at = models.DateTimeField(default=timezone.now)
    stream = models.CharField(max_length=6, default="stdout")  # stdout, stderr, or "gpuq" for our own notes
    text = models.TextField()

    class Meta:
        ordering = ["n"]
        constraints = [models.UniqueConstraint(fields=["job", "n"], name="one_log_line_per_number")]


class Bundle(models.Model):
    """A working directory a user uploaded, as a tar.gz named by its sha256 (stored once per digest)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bundles")
    digest = models.CharField(max_length=64)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "digest"], name="one_bundle_per_owner_digest")]


class Mount(models.Model):
    """A directory staff let `run` jobs mount by name: a read-only dataset or a writable workspace."""

    DATASET, WORKSPACE = "dataset", "workspace"
    name = models.SlugField(max_length=40, unique=True, help_text="what a job asks for: --mount NAME")
    kind = models.CharField(
        max_length=10, choices=[(DATASET, "dataset (read-only)"), (WORKSPACE, "workspace (writable)")]
    )
    path = models.CharField(
        max_length=500, help_text="absolute path on the GPU hosts; {user} becomes the job owner's username"
    )
    everyone = models.BooleanField(default=False, help_text="every user may mount it")
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="mounts")
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="mounts")
    description = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def read_only(self) -> bool:
        return self.kind == self.DATASET
