"""The lab queue over the API: what `submit-job queue` prints (see scheduler/jobs/labqueue.py)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response

from scheduler.jobs import labqueue


class LabJobSerializer(serializers.Serializer):
    """What everyone sees of any job in the lab (scheduler/jobs/labqueue.py)."""

    id = serializers.IntegerField(allow_null=True, help_text="null for another user's job")
    mine = serializers.BooleanField()
    kind = serializers.CharField()
    owner = serializers.CharField()
    status = serializers.CharField()


class QueueRowSerializer(LabJobSerializer):
    gpu = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    queued_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    wait_reason = serializers.CharField(allow_blank=True, help_text="empty for another user's job")


class ShareSerializer(serializers.Serializer):
    user = serializers.CharField()
    running = serializers.IntegerField()
    queued = serializers.IntegerField()
    waiting = serializers.IntegerField()
    gpus = serializers.IntegerField(help_text="GPUs holding the user's jobs now")
    max_gpus = serializers.IntegerField(allow_null=True, help_text="the user's GPU quota, null: none")
    usage_gpu_hours = serializers.FloatField(help_text="recent GPU time, halved every hour")
    usage_share = serializers.FloatField(help_text="the user's part of the lab's recent GPU time, 0 to 1")
    fair_share = serializers.FloatField(help_text="an equal part among users with unfinished jobs, 0 to 1")


class LabQueueSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="unfinished jobs in the lab; at most 500 are listed")
    jobs = QueueRowSerializer(many=True)
    users = ShareSerializer(many=True)


@extend_schema(responses={200: LabQueueSerializer})
@api_view(["GET"])
def lab_queue(request):
    """Every unfinished job in the lab (kind, owner, state, GPU, times) and each user's fair share."""
    jobs, total = labqueue.unfinished()
    body = {"total": total, "jobs": [labqueue.row(j, request.user) for j in jobs], "users": labqueue.shares()}
    return Response(LabQueueSerializer(body).data)
