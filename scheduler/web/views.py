"""The pages: plain function views over the same submission code the API uses."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render

from gpu_tasks.registry import KINDS
from scheduler.jobs import control, results, submission
from scheduler.jobs.models import FINAL, ContainerImage, Status
from scheduler.jobs.visibility import ahead_of, visible_arrays, visible_jobs
from scheduler.web import forms


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = visible_jobs(request.user).order_by("-created_at", "-id")
    status = request.GET.get("status", "")
    if status:
        jobs = jobs.filter(status=status)
    page = Paginator(jobs, 50).get_page(request.GET.get("page"))
    return render(request, "web/jobs.html", {"page": page, "status": status, "statuses": Status.values})


@login_required
def submit(request: HttpRequest) -> HttpResponse:
    kinds = [k for k in KINDS.values() if request.user.is_staff or not k.staff_only]
    chosen, values, errors = request.POST.get("kind", kinds[0].name), {}, {}
    if request.method == "POST":
        values = {k: v for k, v in request.POST.items() if k.startswith(f"{chosen}.")}
        try:
            return redirect(*_submit_form(request, chosen, values))
        except submission.SubmissionError as exc:
            errors = exc.errors
    return render(
        request,
        "web/submit.html",
        {
            "kinds": kinds,
            "chosen": chosen,
            "values": values,
            "errors": errors,
            "form": request.POST,
            "param_errors": errors.get("params") if isinstance(errors.get("params"), dict) else {},
            "images": ContainerImage.objects.values_list("image", flat=True),
            "default_time_limit": settings.JOB_TIME_LIMIT_DEFAULT,
        },
    )


def _submit_form(request: HttpRequest, kind: str, values: dict[str, str]) -> tuple:
    """Submit what the form holds (one job, or an array over a grid); where to go next."""
    common = {
        "priority": _int(request.POST.get("priority"), "priority", 0),
        "time_limit": _int(request.POST.get("time_limit"), "time_limit", None),
    }
    labels = {"name": request.POST.get("name", "").strip()[:100], "tags": forms.tags(request.POST.get("tags", ""))}
    after = [_int(x, "after", 0) for x in request.POST.get("after", "").split(",") if x.strip()]
    params = _params_from_form(kind, values) | forms.uploaded_bundle(request, kind)
    grid = _grid(kind, request.POST.get("array", ""))
    if grid:
        array, _ = submission.submit_array(request.user, kind, params, grid, **common)
        return ("array", array.id)
    spec = {"kind": kind, "params": params, "after": after, **common, **labels}
    job = submission.submit(request.user, [spec])[0]
    return ("job", job.id)


def _int(text: str | None, field: str, default: int | None) -> int | None:
    if not text or not text.strip():
        return default
    try:
        return int(text)
    except ValueError:
        raise submission.SubmissionError({field: f"must be a whole number, got {text!r}"}) from None


def _grid(kind: str, text: str) -> dict[str, list]:
    """`n=1024,2048` -> {"n": [1024, 2048]}, each value typed as its parameter declares."""
    if not text.strip():
        return {}
    name, sep, values = text.partition("=")
    declared = {p.name: p.type for p in KINDS[kind].params}
    if not sep or name.strip() not in declared:
        raise submission.SubmissionError({"array": f"write NAME=V1,V2,... with a parameter of {kind}"})
    return {name.strip(): [_typed(declared[name.strip()], v.strip()) for v in values.split(",") if v.strip()]}


def _params_from_form(kind: str, values: dict[str, str]) -> dict:
    """Form fields are text: give each the type its parameter declares, leaving bad text for the
    validator to name in its message."""
    params = {}
    for p in KINDS[kind].params:
        text = values.get(f"{kind}.{p.name}", "").strip()
        if text == "":
            continue
        params[p.name] = _typed(p.type, text)
    return params


def _typed(kind: type, text: str):
    try:
        if kind is bool:
            return text.lower() in ("1", "true", "on", "yes")
        return kind(text) if kind in (int, float) else text
    except ValueError:
        return text


@login_required
def job_page(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(visible_jobs(request.user).select_related("owner"), pk=pk)
    if request.method == "POST" and "cancel" in request.POST:
        control.cancel(job, by=request.user.username)
        return redirect("job", pk=job.id)
    context = {
        "job": job,
        "events": job.events.all(),
        "ahead": ahead_of(job),
        "result_url": results.url(job),
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
    return render(request, "web/gpus.html", {"gpus": control.fleet_view(), "counts": counts})
