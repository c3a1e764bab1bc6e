"""HTTP access to the Frontier API: token header, the server's error messages, retries, pages."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import requests

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT = (10, 60)  # (connect, read) seconds for ordinary calls
GET_RETRIES = 4


class ApiError(Exception):
    """The server answered with an error; the message is the server's own."""

    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code = status_code

    @property
    def transient(self) -> bool:
        """5xx, except 507: a server out of disk space stays so for longer than a retry waits."""
        return self.status_code >= 500 and self.status_code != OUT_OF_SPACE


OUT_OF_SPACE = 507


class ServerUnreachable(Exception):
    """No answer at all from the configured URL: a configuration problem, not a passing one."""


def error_message(response: requests.Response) -> str:
    """The server's message: DRF's {"detail": ...} or its field errors, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        title = re.search(r"<title>(.*?)</title>", response.text, re.IGNORECASE | re.DOTALL)
        text = title.group(1).strip() if title else response.text.strip()[:500]
        return text or response.reason or ""
    if isinstance(body, dict):
        if "detail" in body and len(body) == 1:
            return str(body["detail"])
        parts = []
        for field, problems in body.items():
            problems = problems if isinstance(problems, list) else [problems]
            parts.append(f"{field}: {' '.join(str(problem) for problem in problems)}")
        return "; ".join(parts)
    if isinstance(body, list):
        return "; ".join(str(item) for item in body)
    return str(body)


def backoff_delay(failure: int, base: float) -> float:
    """Seconds to wait after the `failure`-th consecutive failure: base, 2·base, 4·base, … capped at 30 s."""
    return min(base * 2 ** (failure - 1), 30.0)


def is_transient(error: Exception) -> bool:
    """A dropped connection, a timeout or a 5xx: worth trying again."""
    if isinstance(error, ApiError):
        return error.transient
    return isinstance(error, (requests.ConnectionError, requests.Timeout))


class Api:
    """One Frontier server and token. Calls return parsed JSON or raise ApiError.

    GETs are retried with backoff on transient errors, but only once the server has answered at
    least once: a server that never answered is a wrong URL, reported at once."""

    def __init__(self, url: str, token: str, *, session: requests.Session | None = None, retry_delay: float = 1.0):
        self.url = url.rstrip("/")
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"
        self.retry_delay = retry_delay
        self.reached = False

    def absolute(self, path_or_url: str) -> str:
        return path_or_url if path_or_url.startswith(("http://", "https://")) else self.url + path_or_url

    def request(self, method: str, path: str, *, timeout=TIMEOUT, **kwargs) -> requests.Response:
        """One try. Raises ApiError for an error status, ServerUnreachable if the server never answered."""
        try:
            response = self.session.request(method, self.absolute(path), timeout=timeout, **kwargs)
        except requests.ConnectionError as error:
            if not self.reached:
                raise ServerUnreachable(
                    f"Cannot reach the Frontier server at {self.url} ({error.__class__.__name__}). "
                    f"Set FRONTIER_URL or pass --url."
                ) from error
            raise
        self.reached = True
        if response.status_code >= 400:
            raise ApiError(response.status_code, error_message(response))
        return response

    def get(self, path: str, params: dict | None = None) -> dict:
        failures = 0
        while True:
            try:
                return self.request("GET", path, params=params).json()
            except (ApiError, requests.RequestException) as error:
                failures += 1
                if not is_transient(error) or failures > GET_RETRIES:
                    raise
                time.sleep(backoff_delay(failures, self.retry_delay))

    def post(self, path: str, payload: dict, *, timeout=TIMEOUT) -> tuple[dict, int]:
        response = self.request("POST", path, json=payload, timeout=timeout)
        return response.json(), response.status_code

    def paginate(self, path: str, params: dict | None = None) -> Iterator[dict]:
        """Every item of a paginated list, following the `next` links."""
        page = self.get(path, params)
        while True:
            yield from page["results"]
            if not page.get("next"):
                return
            page = self.get(page["next"])
