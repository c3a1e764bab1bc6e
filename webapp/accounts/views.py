"""The sign-up page (off unless FRONTIER_SIGNUP_ENABLED): Django's UserCreationForm checks the name
and the password (AUTH_PASSWORD_VALIDATORS), the accounts service creates the user, who is then
logged in."""

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from webapp.accounts.services import SIGNUP_CLOSED_MESSAGE, user_sign_up


def signup(request):
    if not settings.FRONTIER_SIGNUP_ENABLED:
        return render(request, "pages/signup.html", {"closed": SIGNUP_CLOSED_MESSAGE}, status=404)
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        next_url = settings.LOGIN_REDIRECT_URL
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = user_sign_up(username=form.cleaned_data["username"], password=form.cleaned_data["password1"])
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(next_url)
    return render(request, "pages/signup.html", {"form": form, "next": next_url},
                  status=400 if request.method == "POST" else 200)
