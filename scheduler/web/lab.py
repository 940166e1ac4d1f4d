"""The lab's pages: the queue everyone shares, and fair share."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from scheduler.dispatch.connections import redis_client
from scheduler.fleet import store as fleet
from scheduler.jobs import labqueue


@login_required
def queue_page(request: HttpRequest) -> HttpResponse:
    jobs, total = labqueue.unfinished()
    charts = {g.get("queue"): g["uuid"] for g in fleet.known_gpus(redis_client())}  # each GPU's page
    context = {
        "jobs": [{**labqueue.row(j, request.user), "gpu_uuid": charts.get(j.queue)} for j in jobs],
        "total": total,
        "users": labqueue.shares(),
    }
    return render(request, "web/queue.html", context)
