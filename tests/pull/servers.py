"""Loopback stand-ins for the network: a file server with Range support, and the few routes of
the Hugging Face Hub that `huggingface_hub` calls (model_info, HEAD and GET of /resolve/)."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Served:
    """What the server holds, and how it misbehaves on purpose."""

    files: dict[str, bytes] = field(default_factory=dict)  # path -> content
    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)  # hub repo -> files
    drop_once: set[str] = field(default_factory=set)  # paths cut mid-file on the first GET
    truncate: set[str] = field(default_factory=set)  # paths always cut short
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, Range
    authorizations: set[str] = field(default_factory=set)  # Authorization headers seen


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    served: Served

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, *, head: bool) -> None:
        path = self.path.split("?", 1)[0]
        self.served.requests.append((self.command, path, self.headers.get("Range", "")))
        if auth := self.headers.get("Authorization"):
            self.served.authorizations.add(auth)
        if info := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/[^/]+)?", path):
            return self._model_info(info.group(1))
        if resolve := re.fullmatch(r"/([^/]+/[^/]+)/resolve/[^/]+/(.+)", path):
            repo, filename = resolve.groups()
            content = self.served.repos.get(repo, {}).get(filename)
            extra = {"X-Repo-Commit": COMMIT}
            if content is not None:
                sha = hashlib.sha256(content).hexdigest()
                extra |= {"ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"'}
                extra["X-Linked-Size"] = str(len(content))
            return self._file(content, head, f"{repo}/{filename}", extra)
        return self._file(self.served.files.get(path), head, path, {})

    def _model_info(self, repo: str) -> None:
        files = self.served.repos.get(repo)
        if files is None:
            return self._send(
                404, b'{"error":"Repository not found"}', {"X-Error-Code": "RepoNotFound"}
            )
        siblings = [
            {
                "rfilename": name,
                "size": len(data),
                "lfs": {
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                    "pointerSize": 134,
                },
            }
            for name, data in files.items()
        ]
        body = json.dumps({"id": repo, "sha": COMMIT, "siblings": siblings}).encode()
        self._send(200, body, {"Content-Type": "application/json"})

    def _file(self, content: bytes | None, head: bool, key: str, extra: dict[str, str]) -> None:
        if content is None:
            return self._send(404, b"not found", {"X-Error-Code": "EntryNotFound"})
        start = 0
        status = 200
        headers = {"Accept-Ranges": "bytes", **extra}
        if (r := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))) and not head:
            start = int(r.group(1))
            if start >= len(content):
                return self._send(416, b"", {"Content-Range": f"bytes */{len(content)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
        body = content[start:]
        headers["Content-Length"] = str(len(body))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if head:
            return
        cut = key in self.served.truncate or key in self.served.drop_once
        self.served.drop_once.discard(key)
        if cut:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@contextmanager
def serve(served: Served) -> Iterator[str]:
    """`served` over HTTP on a free loopback port, in a thread; yields the base URL."""
    handler = type("Handler", (_Handler,), {"served": served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
