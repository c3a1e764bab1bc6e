import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from webapp.accounts.models import ApiToken
from webapp.accounts.services import api_token_create, api_token_revoke, hash_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice", password="pw-alice-123")


def whoami(token: str):
    return APIClient().get("/api/v1/whoami/", HTTP_AUTHORIZATION=f"Token {token}")


def test_createapitoken_prints_a_token_once_and_stores_only_its_hash(alice):
    out = io.StringIO()
    call_command("createapitoken", "alice", "--name", "ci", stdout=out)
    token = out.getvalue().strip()
    record = ApiToken.objects.get()
    assert token.startswith("frt_") and len(token) > 40
    assert record.key_hash == hash_token(token) and token not in record.key_hash
    assert record.prefix == token[:12] and record.name == "ci"
    assert whoami(token).json()["username"] == "alice"


def test_createapitoken_for_an_unknown_user_says_so():
    with pytest.raises(CommandError, match="No user named 'bob'"):
        call_command("createapitoken", "bob")


def test_token_use_records_last_used_time(alice):
    record, token = api_token_create(user=alice)
    assert record.last_used_at is None
    response = whoami(token)
    assert response.status_code == 200
    assert response.json()["auth"] == "token"
    record.refresh_from_db()
    assert record.last_used_at is not None


def test_revoked_token_is_refused_with_the_reason(alice):
    record, token = api_token_create(user=alice)
    api_token_revoke(record)
    response = whoami(token)
    assert response.status_code == 401
    assert "was revoked" in response.json()["detail"]


def test_revokeapitoken_command(alice):
    record, token = api_token_create(user=alice)
    call_command("revokeapitoken", token[:12], stdout=io.StringIO())
    record.refresh_from_db()
    assert record.revoked_at is not None
    with pytest.raises(CommandError, match="No active token"):
        call_command("revokeapitoken", token[:12])


@pytest.mark.parametrize(
    "header, message",
    [
        ("Token frt_not-a-real-token", "Invalid token."),
        ("Token a b", "Invalid Authorization header"),
        ("Token", "Invalid Authorization header"),
    ],
)
def test_bad_tokens_are_401_with_a_precise_message(alice, header, message):
    response = APIClient().get("/api/v1/whoami/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert message in response.json()["detail"]
    assert response["WWW-Authenticate"] == "Token"


def test_anonymous_api_request_is_401():
    assert APIClient().get("/api/v1/jobs/").status_code == 401
