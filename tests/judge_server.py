"""A judge for tests: a small HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions protocol.

``JudgeServer(reply, model="judge-model")`` is a context manager serving ``GET /v1/models`` (the one model,
``owned_by`` "frontier-test") and ``POST /v1/chat/completions``: the assistant's content is ``reply(text)``, the
text of the request's last user message. ``url`` is the base URL ("http://127.0.0.1:PORT/v1", what
FRONTIER_JUDGE_URL takes), ``requests`` the JSON payloads received (in order), ``headers`` their headers.
Setting ``failing = True`` makes every chat request answer HTTP 503, as a judge that went down does; a request
for another model gets a 404 as vLLM answers it.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JudgeServer:
    def __init__(self, reply, model: str = "judge-model", owned_by: str = "frontier-test"):
        self.reply, self.model, self.owned_by = reply, model, owned_by
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.failing = False
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def prompts(self) -> list[str]:
        """The last user message of each chat request received."""
        return [_user_text(payload) for payload in self.requests]

    def _handler(self):
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                if self.path.rstrip("/") != "/v1/models":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                self._send(200, {"object": "list", "data": [
                    {"id": judge.model, "object": "model", "owned_by": judge.owned_by}]})

            def do_POST(self):  # noqa: N802
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with judge._lock:
                    judge.requests.append(payload)
                    judge.headers.append(dict(self.headers))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                if judge.failing:
                    return self._send(503, {"error": {"message": "the judge is down"}})
                if payload.get("model") != judge.model:
                    return self._send(404, {"error": {"message": f"The model `{payload.get('model')}` does not "
                                                                 f"exist."}})
                content = judge.reply(_user_text(payload))
                self._send(200, {
                    "id": f"chatcmpl-{len(judge.requests)}", "object": "chat.completion", "model": judge.model,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                })

        return Handler

    def __enter__(self):
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _user_text(payload: dict) -> str:
    messages = [m for m in payload.get("messages", []) if m.get("role") == "user"]
    if not messages:
        return ""
    content = messages[-1].get("content", "")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if part.get("type") == "text")
    return content
