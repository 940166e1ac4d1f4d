"""The lab's pages: the queue everyone shares, and fair share."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from scheduler.jobs import labqueue


@login_required
def queue_page(request: HttpRequest) -> HttpResponse:
    jobs, total = labqueue.unfinished()
    context = {
        "jobs": [labqueue.row(j, request.user) for j in jobs],
        "total": total,
        "users": labqueue.shares(),
    }
    return render(request, "web/queue.html", context)
