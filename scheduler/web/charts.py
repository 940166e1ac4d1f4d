"""A GPU's own page: its chart over the last minutes or hours, and the jobs that ran on it meanwhile."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from scheduler.api.charts import ChartSerializer
from scheduler.jobs import control, timeline

DEFAULT_MINUTES = 180


@login_required
def gpu_chart_page(request: HttpRequest, uuid: str) -> HttpResponse:
    minutes = _minutes(request.GET.get("minutes"))
    try:
        chart = timeline.chart(uuid, request.user, minutes)
    except control.UnknownGpu as exc:
        raise Http404(str(exc)) from None
    context = {
        "chart": chart,
        "data": ChartSerializer(chart).data,  # the chart's first drawing, without a second request
        "minutes": minutes,
        "ranges": timeline.RANGES.items(),
        "refresh": 2 if minutes <= timeline.FINE_UP_TO else 30,
    }
    return render(request, "web/gpu.html", context)


def _minutes(text: str | None) -> int:
    """A range the page offers; anything else is the default rather than an error page (as accounting's days)."""
    return int(text) if text and text.isdigit() and int(text) in timeline.RANGES else DEFAULT_MINUTES
