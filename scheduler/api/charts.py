"""A GPU's chart over the API: its telemetry over a range and the jobs that ran there (scheduler/jobs/timeline.py)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from scheduler.api.lab import LabJobSerializer
from scheduler.fleet.rollup import HISTORY_FIELDS
from scheduler.jobs import timeline

MINUTES_MAX = 7 * 24 * 60  # what a range may ask; what comes back is what TELEMETRY_HISTORY_HOURS kept


# A point's min, mean and max of each telemetry field, as scheduler/fleet/rollup.py names them.
SeriesPointSerializer = type(
    "SeriesPointSerializer",
    (serializers.Serializer,),
    {
        "t": serializers.FloatField(help_text="epoch seconds: the reading's time, or the start of its minute"),
        "n": serializers.IntegerField(help_text="readings summed up in this point (1 for a one-second point)"),
        **{
            f"{field}_{stat}": serializers.FloatField(allow_null=True)
            for field in HISTORY_FIELDS
            for stat in ("min", "mean", "max")
        },
    },
)


class MarkerSerializer(LabJobSerializer):
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True, help_text="null while it runs")


class ChartSerializer(serializers.Serializer):
    uuid = serializers.CharField()
    name = serializers.CharField()
    host = serializers.CharField()
    queue = serializers.CharField()
    memory_total = serializers.IntegerField(allow_null=True, help_text="bytes")
    start = serializers.FloatField(help_text="epoch seconds")
    end = serializers.FloatField(help_text="epoch seconds")
    step = serializers.IntegerField(help_text="seconds a point covers: 1 (the last minutes) or 60")
    points = SeriesPointSerializer(many=True)
    jobs = MarkerSerializer(
        many=True, help_text=f"jobs that ran there in the range, latest first, {timeline.MARKERS} at most"
    )


@extend_schema(
    parameters=[
        OpenApiParameter(
            "minutes",
            int,
            description=f"the range: the last MINUTES (1 to {MINUTES_MAX}, default 180); up to "
            f"{timeline.FINE_UP_TO} a point a second, beyond a point a minute",
        )
    ],
    responses={200: ChartSerializer},
)
@api_view(["GET"])
def gpu_chart(request, uuid: str):
    """The GPU's utilization, memory and temperature over a range (min, mean and max per point) and the
    starts and ends of the jobs that ran on it, for its chart."""
    body = timeline.chart(uuid, request.user, minutes(request.query_params.get("minutes")))
    return Response(ChartSerializer(body).data)


def minutes(text: str | None) -> int:
    """The range a page or API call asked for, in minutes; a ValidationError (400) when out of bounds."""
    try:
        value = 180 if text is None else int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MINUTES_MAX:
        raise ValidationError({"minutes": f"must be a whole number of minutes from 1 to {MINUTES_MAX}, got {text!r}"})
    return value
