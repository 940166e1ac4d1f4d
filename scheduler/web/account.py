"""A lab member's own page for the CLI: their API token and the command that stores it."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from rest_framework.authtoken.models import Token

from scheduler.api.auth import forget


@login_required
def token_page(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and "renew" in request.POST:
        # A token shown on a shared screen or pasted somewhere is replaced here; the old one stops working.
        for key in Token.objects.filter(user=request.user).values_list("key", flat=True):
            forget(key)
        Token.objects.filter(user=request.user).delete()
        return redirect("token")
    token = Token.objects.get_or_create(user=request.user)[0]
    server = request.build_absolute_uri("/").rstrip("/")
    return render(request, "web/token.html", {"token": token.key, "server": server})
