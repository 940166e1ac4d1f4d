"""The accounting page: finished jobs and their totals by user and kind, and the same as CSV."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from scheduler.jobs import accounting
from scheduler.jobs.visibility import visible_jobs

DAYS = (1, 7, 30, 365)


@login_required
def accounting_page(request: HttpRequest) -> HttpResponse:
    days = _days(request.GET.get("days"))
    jobs = accounting.finished(visible_jobs(request.user), days)
    if request.GET.get("format") == "csv":
        response = HttpResponse(accounting.as_csv(jobs), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="gpuq-accounting-{days}d.csv"'
        return response
    page = Paginator(jobs, 100).get_page(request.GET.get("page"))
    context = {
        "days": days,
        "choices": DAYS,
        "page": page,
        "rows": [accounting.row(j) for j in page],
        "by_user": accounting.totals(jobs, "owner__username"),
        "by_kind": accounting.totals(jobs, "kind"),
    }
    return render(request, "web/accounting.html", context)


def _days(text: str | None) -> int:
    """A window the page offers; anything else is the default week rather than an error page."""
    return int(text) if text and text.isdigit() and int(text) in DAYS else 7
