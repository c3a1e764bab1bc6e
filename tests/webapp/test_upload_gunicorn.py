"""Chunk PUTs through a real gunicorn, whose request body the upload view reads straight from the
socket (webapp.registry.api.bodies): with the sync worker, and with the gthread worker that keeps
connections alive, so a chunk refused before its body was read, and requests pipelined on one
connection, must leave gunicorn's parser in step."""

import hashlib
import http.client
import json
import os
import socket
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model

from webapp.registry.models import Checkpoint, Upload

pytestmark = pytest.mark.integration

WORKERS = {"sync": (), "gthread": ("-k", "gthread", "--threads", "2", "--keep-alive", "30")}


def address(url: str) -> tuple[str, int]:
    host, port = urlsplit(url).netloc.split(":")
    return host, int(port)


@pytest.fixture
def token(transactional_db):
    from webapp.accounts.services import api_token_create

    return api_token_create(user=get_user_model().objects.create_user("alice"))[1]


@pytest.fixture(params=sorted(WORKERS))
def web(request, start_web, local_media):
    return start_web({"MEDIA_ROOT": str(local_media)}, WORKERS[request.param])


def start_upload(connection, token, payload: bytes) -> int:
    body = f'{{"filename": "c.tar", "size": {len(payload)}, "sha256": "{hashlib.sha256(payload).hexdigest()}"}}'
    connection.request("POST", "/api/v1/uploads/", body=body,
                       headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
    answer = connection.getresponse()
    assert answer.status == 201, answer.read()
    return int(json.loads(answer.read())["id"])


def chunk_request(upload_id: int, token: str, payload: bytes, start: int, end: int) -> bytes:
    """One raw HTTP/1.1 PUT of payload[start:end] (end exclusive)."""
    head = (
        f"PUT /api/v1/uploads/{upload_id}/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {end - start}\r\n"
        f"Content-Range: bytes {start}-{end - 1}/{len(payload)}\r\n\r\n"
    )
    return head.encode() + payload[start:end]


def test_chunks_on_one_kept_alive_connection_refused_accepted_and_pipelined(start_web, token, local_media):
    web = start_web({"MEDIA_ROOT": str(local_media)}, WORKERS["gthread"])  # the sync worker does not keep alive
    payload = os.urandom(3 * 1024 * 1024 + 5)
    third = len(payload) // 3
    connection = http.client.HTTPConnection(*address(web), timeout=60)
    upload_id = start_upload(connection, token, payload)

    # Refused before its body is read (it does not start at the offset): gunicorn drains the body
    # (up to 64 KiB; past that it closes the connection instead).
    connection.request("PUT", f"/api/v1/uploads/{upload_id}/", body=payload[third:third + 4000], headers={
        "Authorization": f"Token {token}", "Content-Type": "application/octet-stream",
        "Content-Range": f"bytes {third}-{third + 3999}/{len(payload)}"})
    refused = connection.getresponse()
    assert refused.status == 400 and b"resume from there" in refused.read()
    assert refused.getheader("Connection") == "keep-alive", refused.getheaders()

    # Chunks sent back to back before reading any answer (HTTP pipelining): the two small ones
    # arrive in gunicorn's first read, with the start of the large one behind them.
    raw = connection.sock
    bounds = [(0, 100), (100, 300), (300, third), (third, 2 * third)]
    raw.sendall(b"".join(chunk_request(upload_id, token, payload, start, end) for start, end in bounds))
    for _, offset in bounds:
        answer = http.client.HTTPResponse(raw)
        answer.begin()
        assert answer.status == 200 and f'"offset":{offset}'.encode() in answer.read().replace(b" ", b"")

    connection.request("PUT", f"/api/v1/uploads/{upload_id}/", body=payload[2 * third:], headers={
        "Authorization": f"Token {token}", "Content-Type": "application/octet-stream",
        "Content-Range": f"bytes {2 * third}-{len(payload) - 1}/{len(payload)}"})
    assert connection.getresponse().read() and Upload.objects.get(pk=upload_id).offset == len(payload)
    connection.request("POST", f"/api/v1/uploads/{upload_id}/complete/", body='{"name": "kept alive"}',
                       headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
    assert connection.getresponse().status == 201
    assert (local_media / Checkpoint.objects.get().files_prefix).read_bytes() == payload


def test_a_connection_that_drops_mid_chunk_keeps_the_offset(web, token, local_media):
    payload = os.urandom(2 * 1024 * 1024)
    half = len(payload) // 2
    connection = http.client.HTTPConnection(*address(web), timeout=60)
    upload_id = start_upload(connection, token, payload)
    with socket.create_connection(address(web), timeout=60) as cut:
        request = chunk_request(upload_id, token, payload, 0, len(payload))
        cut.sendall(request[: len(request) - half - 1000])  # the headers and part of the body, then nothing
    connection.request("GET", f"/api/v1/uploads/{upload_id}/", headers={"Authorization": f"Token {token}"})
    answer = connection.getresponse()
    assert answer.status == 200 and b'"offset":0' in answer.read().replace(b" ", b"")

    with socket.create_connection(address(web), timeout=60) as whole:
        whole.sendall(chunk_request(upload_id, token, payload, 0, len(payload)))
        answer = http.client.HTTPResponse(whole)
        answer.begin()
        assert answer.status == 200, answer.read()
    assert Upload.objects.get(pk=upload_id).offset == len(payload)
