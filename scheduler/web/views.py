"""The pages: plain function views over the same submission code the API uses."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render

from gpu_tasks.registry import KINDS
from scheduler.jobs import control, finding, forecast, labqueue, results, submission
from scheduler.jobs.models import FINAL, ContainerImage, Status
from scheduler.jobs.visibility import ahead_of, fleet_seen_by, visible_arrays, visible_jobs
from scheduler.web import forms, resubmit, submitform


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    query = {k: request.GET.get(k, "").strip() for k in ("status", "kind", "q")}
    jobs = visible_jobs(request.user).select_related("owner").order_by("-created_at", "-id")
    try:
        jobs, problem = finding.filtered(jobs, **query), ""
    except finding.BadFilter as exc:
        jobs, problem = jobs.none(), str(exc)
    page = Paginator(jobs, 50).get_page(request.GET.get("page"))
    context = {"page": page, "query": query, "problem": problem, "statuses": Status.values, "kinds": sorted(KINDS)}
    return render(request, "web/jobs.html", context, status=400 if problem else 200)


@login_required
def submit(request: HttpRequest) -> HttpResponse:
    kinds = [k for k in KINDS.values() if request.user.is_staff or not k.staff_only]
    form = request.POST if request.method == "POST" else resubmit.prefill(request.user, request.GET.get("from"))
    chosen, errors, status = form.get("kind", kinds[0].name), {}, 200
    if request.method == "POST":
        try:
            return redirect(*submitform.submit(request.user, request.POST, chosen, request.FILES))
        except submission.SubmissionError as exc:
            errors, status = exc.errors, exc.status
    if chosen not in KINDS:
        chosen = kinds[0].name  # the error names what was sent; the form shows a kind that exists
    sent = errors.get("params")
    param_errors: dict = sent if isinstance(sent, dict) else {}
    context = {
        "kinds": [(k, _fields(k, form, param_errors if k.name == chosen else {})) for k in kinds],
        "chosen": chosen,
        "errors": errors,
        "form": form,
        "other_param_errors": {
            n: m for n, m in param_errors.items() if n not in {p.name for p in KINDS[chosen].params}
        },
        "images": ContainerImage.objects.values_list("image", flat=True),
        "default_time_limit": settings.JOB_TIME_LIMIT_DEFAULT,
    }
    return render(request, "web/submit.html", context, status=status)


def _fields(kind, form, param_errors: dict) -> list[dict]:
    """Each parameter's input as the page shows it: what was typed, its default in words, its error."""
    return [
        {
            "param": p,
            "name": f"{kind.name}.{p.name}",
            "value": form.get(f"{kind.name}.{p.name}", ""),
            "error": param_errors.get(p.name),
        }
        for p in kind.params
    ]


@login_required
def job_page(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(visible_jobs(request.user).select_related("owner"), pk=pk)
    if request.method == "POST" and "cancel" in request.POST:
        control.cancel(job, by=request.user.username)
        return redirect("job", pk=job.id)
    shown = {k: v for k, v in (job.result or {}).items() if k != "gpu_time_s"}  # shown beside GPU time
    context = {
        "job": job,
        "events": job.events.all(),
        "ahead": ahead_of(job),
        "forecast": forecast.of(job),
        "result_url": results.url(job),
        "result": sorted(shown.items()),
        "kernel_seconds": (job.result or {}).get("gpu_time_s"),
        "cli": resubmit.cli_command(job),
        **forms.log_and_outputs(job),
    }
    return render(request, "web/job.html", context)


@login_required
def array_page(request: HttpRequest, pk: int) -> HttpResponse:
    array = get_object_or_404(visible_arrays(request.user), pk=pk)
    if request.method == "POST" and "cancel" in request.POST:
        control.cancel_array(array, by=request.user.username)
        return redirect("array", pk=array.id)
    jobs = array.jobs.order_by("id")
    return render(
        request, "web/array.html", {"array": array, "jobs": jobs, "open": jobs.exclude(status__in=FINAL).exists()}
    )


@login_required
def gpu_page(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if not request.user.is_staff:
            return HttpResponseForbidden("only staff drain and resume GPUs")
        uuid = request.POST.get("uuid", "")
        try:
            if "drain" in request.POST:
                control.drain(uuid, f"drained by {request.user.username}")
            else:
                control.resume(uuid)
        except control.UnknownGpu as exc:
            raise Http404(str(exc)) from None
        return redirect("gpus")
    counts = control.counts(visible_jobs(request.user))["counts"]
    gpus = labqueue.with_holders(request.user, fleet_seen_by(request.user, control.fleet_view()))
    return render(request, "web/gpus.html", {"gpus": gpus, "counts": counts})
