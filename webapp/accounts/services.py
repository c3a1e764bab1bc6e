"""Accounts and API tokens: sign-up (when the server allows it), tokens created (the plain token is
returned once), revoked, authenticated."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from webapp.accounts.models import ApiToken

TOKEN_PREFIX = "frt_"
# Writing last_used_at on every request would turn each API read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenError(Exception):
    """The token is missing, unknown or revoked; the message says which."""


class SignupClosed(Exception):
    """Sign-up is off on this server (FRONTIER_SIGNUP_ENABLED=false)."""


SIGNUP_CLOSED_MESSAGE = (
    "Sign-up is off on this server: ask an administrator for an account (manage.py createsuperuser or the "
    "admin), or to set FRONTIER_SIGNUP_ENABLED=true."
)


def user_sign_up(*, username: str, password: str, email: str = ""):
    """Create an ordinary (not staff) account, when FRONTIER_SIGNUP_ENABLED allows it. The caller has
    checked the username and password (Django's UserCreationForm and password validators)."""
    if not settings.FRONTIER_SIGNUP_ENABLED:
        raise SignupClosed(SIGNUP_CLOSED_MESSAGE)
    return get_user_model().objects.create_user(username=username, password=password, email=email)


def hash_token(token: str) -> str:
    # Tokens are 256-bit random strings, so a fast hash is as safe as a slow one here.
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_create(*, user, name: str = "") -> tuple[ApiToken, str]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken.objects.create(user=user, name=name, prefix=token[:12], key_hash=hash_token(token))
    return record, token


def api_token_create_for_username(*, username: str, name: str = "") -> tuple[ApiToken, str]:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise TokenError(f"No user named {username!r}. Create one first (manage.py createsuperuser).")
    if not user.is_active:
        raise TokenError(f"User {username!r} is inactive.")
    return api_token_create(user=user, name=name)


def api_token_revoke(token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def api_token_authenticate(token: str) -> ApiToken:
    record = ApiToken.objects.select_related("user").filter(key_hash=hash_token(token)).first()
    if record is None:
        raise TokenError("Invalid token.")
    if record.revoked_at is not None:
        raise TokenError(f"Token {record.prefix}… was revoked on {record.revoked_at:%Y-%m-%d %H:%M} UTC.")
    if not record.user.is_active:
        raise TokenError("The token's user is inactive.")
    now = timezone.now()
    if record.last_used_at is None or now - record.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=record.pk).update(last_used_at=now)
        record.last_used_at = now
    return record
