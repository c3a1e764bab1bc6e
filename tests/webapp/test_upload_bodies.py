"""The chunk body read straight from gunicorn's socket, on real gunicorn reader objects over a
socket pair: what gunicorn read ahead comes first, the rest from the socket, bytes pipelined
behind the body stay in gunicorn's buffer and gunicorn's count of unread body bytes stays true."""

import io
import os
import socket
import threading
from types import SimpleNamespace

import pytest
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader

from webapp.registry.api.bodies import GunicornSocketBody, chunk_body
from webapp.registry.chunkio import write_stream_at

NEXT_REQUEST = b"PUT /api/v1/uploads/1/ HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def socket_pair():
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def gunicorn_request(server_sock, length: int, read_ahead: bytes):
    """What gunicorn hands the application: wsgi.input over an unreader that already holds
    `read_ahead` (it reads past the headers in blocks), and the socket in the environ."""
    unreader = SocketUnreader(server_sock)
    unreader.unread(read_ahead)
    body = Body(LengthReader(unreader, length))
    meta = {"wsgi.input": body, "gunicorn.socket": server_sock, "CONTENT_LENGTH": str(length)}
    return SimpleNamespace(META=meta, stream=io.BytesIO(b"the generic stream")), body, unreader


def send_later(sock, data: bytes) -> threading.Thread:
    sender = threading.Thread(target=sock.sendall, args=(data,))
    sender.start()
    return sender


@pytest.mark.parametrize("ahead", [0, 100, 4096])
def test_the_body_is_read_from_the_socket_after_the_read_ahead(socket_pair, tmp_path, ahead):
    server, client = socket_pair
    payload = os.urandom(3 * 1024 * 1024 + 17)
    request, body, unreader = gunicorn_request(server, len(payload), payload[:ahead])
    sender = send_later(client, payload[ahead:] + NEXT_REQUEST)
    stream = chunk_body(request)
    assert isinstance(stream, GunicornSocketBody)
    with open(tmp_path / "part", "wb", buffering=0) as part:
        assert write_stream_at(part.fileno(), tmp_path / "part", stream, 0, len(payload)) == len(payload)
    sender.join()
    assert (tmp_path / "part").read_bytes() == payload
    assert body.reader.length == 0 and body.read() == b""  # nothing left for gunicorn to drain
    assert unreader.read() == NEXT_REQUEST  # the pipelined request is still gunicorn's to parse


def test_a_pipelined_request_already_read_ahead_goes_back_to_gunicorn(socket_pair):
    server, _ = socket_pair
    payload = b"0123456789" * 10
    request, body, unreader = gunicorn_request(server, len(payload), payload + NEXT_REQUEST)
    stream = chunk_body(request)
    buffer = bytearray(1000)
    count = stream.readinto(buffer)
    assert bytes(buffer[:count]) == payload and stream.readinto(buffer) == 0
    assert body.reader.length == 0 and unreader.read() == NEXT_REQUEST


def test_a_client_that_stops_midway_leaves_gunicorns_count_of_the_rest(socket_pair, tmp_path):
    server, client = socket_pair
    request, body, _ = gunicorn_request(server, 1000, b"a" * 10)
    client.sendall(b"b" * 290)
    client.shutdown(socket.SHUT_WR)
    with open(tmp_path / "part", "wb", buffering=0) as part:
        assert write_stream_at(part.fileno(), tmp_path / "part", chunk_body(request), 0, 1000) == 300
    assert body.reader.length == 700


def test_a_body_someone_started_to_read_uses_the_generic_stream(socket_pair):
    server, client = socket_pair
    request, body, _ = gunicorn_request(server, 20, b"x" * 20)
    body.read(5)
    assert chunk_body(request) is request.stream


def test_other_servers_get_the_generic_stream():
    request = SimpleNamespace(META={"wsgi.input": io.BytesIO(b"abc"), "CONTENT_LENGTH": "3"}, stream=io.BytesIO(b"abc"))
    assert chunk_body(request) is request.stream
