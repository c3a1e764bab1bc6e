"""A chunk's request body, read straight from gunicorn's socket when gunicorn serves the request.

gunicorn's `wsgi.input` passes every byte through several BytesIO buffers (Body, LengthReader,
the unreader): about 600 MiB/s here, a third of what `cp` reaches on the same disk, which made the
web process the bottleneck of multi-GB uploads. `chunk_body` returns a reader that first hands out
the body bytes gunicorn has already read ahead, then `recv_into`s the rest straight from the
socket into the caller's buffer. It keeps gunicorn's own count of unread body bytes up to date
after every read, so a keep-alive worker (gthread) still drains an unread remainder before it
parses the next request, and bytes a client pipelined behind the body stay in gunicorn's buffer.

Anything else (another WSGI server, Django's test client, a body someone already started to read)
gets Django's standard stream: the fast path is an optimisation, never a requirement.
"""

from __future__ import annotations

import io

try:  # gunicorn is the production server but not needed to import the web app
    from gunicorn.http.body import Body, LengthReader
    from gunicorn.http.unreader import SocketUnreader
except ImportError:  # pragma: no cover - gunicorn is in requirements.txt
    Body = LengthReader = SocketUnreader = None


class GunicornSocketBody(io.RawIOBase):
    """The rest of a gunicorn request body of known length, read with `recv_into`."""

    def __init__(self, body, length: int):
        super().__init__()
        self._reader = body.reader  # LengthReader: .length is what gunicorn has not handed out yet
        self._unreader = body.reader.unreader
        self._sock = self._unreader.sock
        # The read-ahead gunicorn already holds may also hold the start of a pipelined next
        # request: that part goes back.
        ahead = self._unreader.take_buffered()
        taken = ahead[: self._reader.length]
        if len(ahead) > len(taken):
            self._unreader.unread(ahead[len(taken):])
        self._reader.length -= len(taken)
        self._held = memoryview(taken)
        self._remaining = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._remaining)
        if want <= 0:
            return 0
        if self._held:
            count = min(want, len(self._held))
            view[:count] = self._held[:count]
            self._held = self._held[count:]
        else:
            count = self._sock.recv_into(view[:min(want, self._reader.length)])
            self._reader.length -= count
        self._remaining -= count
        return count


def chunk_body(request):
    """A readable (with `readinto`) for the request's raw body of CONTENT_LENGTH bytes."""
    meta = request.META
    body, sock = meta.get("wsgi.input"), meta.get("gunicorn.socket")
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    untouched = (
        Body is not None and sock is not None and length > 0
        and type(body) is Body and type(body.reader) is LengthReader
        and type(body.reader.unreader) is SocketUnreader and body.reader.unreader.sock is sock
        and body.buf.tell() == 0 and body.reader.length == length  # nobody has read any of it yet
    )
    if untouched:
        return GunicornSocketBody(body, length)
    return request.stream or io.BytesIO()  # DRF gives no stream for an empty body
