"""HTTP front of the stand-in: ``StandInServer`` (in-process) and ``python -m`` (a process).

In-process::

    with StandInServer() as server:            # 127.0.0.1, ephemeral port, memory only
        os.environ.update(server.endpoint_env())  # AWS_ENDPOINT_URL_ACM_PCA / _CLOUDHSM_V2
        ...

As a process::

    python -m pki_ceremony.rehearsal.server --host 127.0.0.1 --port 0 --state-file PATH

prints ``READY http://127.0.0.1:PORT`` on stdout once listening and serves until SIGTERM
or SIGINT. Both speak AWS JSON 1.1 on ``POST /`` (any credentials; signatures are not
checked) and the introspection endpoints of ``app.StandInApp.handle_admin``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Sequence

from .app import HsmHook, StandInApp
from .protocol import JSON_CONTENT_TYPE
from .settings import Settings
from .store import StateError

ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_ACM_PCA", "AWS_ENDPOINT_URL_CLOUDHSM_V2")


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: StandInApp, verbose: bool) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self.verbose = verbose


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pki-ceremony-standin/1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _HttpServer

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, payload: dict[str, Any], content_type: str = JSON_CONTENT_TYPE) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if status >= 400 and "__type" in payload:
            self.send_header("x-amzn-ErrorType", payload["__type"])
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        body = self._body()
        path = self.path.split("?", 1)[0]
        if path.startswith("/_standin/"):
            status, payload = self.server.app.handle_admin("POST", path, body)
            self._send(status, payload, "application/json")
            return
        if path != "/":
            self._send(404, {"__type": "UnknownOperationException", "message": f"no AWS endpoint at {path}"})
            return
        status, payload = self.server.app.handle_aws(
            self.headers.get("X-Amz-Target"), body, self.headers.get("Authorization")
        )
        self._send(status, payload)

    def do_GET(self) -> None:  # noqa: N802
        self._body()
        path = self.path.split("?", 1)[0]
        status, payload = self.server.app.handle_admin("GET", path, b"")
        self._send(status, payload, "application/json")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.verbose:
            super().log_message(format, *args)


class StandInServer:
    """The stand-in on ``host:port`` in a background thread (port 0 = ephemeral)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: str | None = None,
        *,
        settings: Settings | None = None,
        on_hsm_created: HsmHook | None = None,
        on_last_hsm_deleted: HsmHook | None = None,
        verbose: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.verbose = verbose
        self.app = StandInApp(state_file, settings, on_hsm_created, on_last_hsm_deleted)
        self._http: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> str:
        """Listen and serve; returns the endpoint URL."""
        if self._http is not None:
            raise RuntimeError("the stand-in is already running")
        self._http = _HttpServer((self.host, self.port), self.app, self.verbose)
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="aws-stand-in", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._http is None:
            return
        self._http.shutdown()
        self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._http = None
        self._thread = None

    def __enter__(self) -> "StandInServer":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- what callers need ------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("the stand-in is not running")
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def endpoint_env(self) -> dict[str, str]:
        """Environment variables that point boto3's acm-pca and cloudhsmv2 clients here."""
        return {name: self.url for name in ENDPOINT_VARIABLES}

    @property
    def on_hsm_created(self) -> HsmHook | None:
        return self.app.on_hsm_created

    @on_hsm_created.setter
    def on_hsm_created(self, hook: HsmHook | None) -> None:
        self.app.on_hsm_created = hook

    @property
    def on_last_hsm_deleted(self) -> HsmHook | None:
        return self.app.on_last_hsm_deleted

    @on_last_hsm_deleted.setter
    def on_last_hsm_deleted(self, hook: HsmHook | None) -> None:
        self.app.on_last_hsm_deleted = hook

    def calls(self) -> dict[str, dict[str, int]]:
        return self.app.calls()

    def mutating_calls(self) -> int:
        return self.app.mutating_calls()

    def reset_calls(self) -> None:
        self.app.reset(state=False)

    def seed_cluster(self, cluster_id: str, region: str, zone: str) -> bool:
        """Make the CloudHSM cluster a rehearsed ceremony names: initialised, one ACTIVE HSM in `zone`."""
        return self.app.seed_cluster(cluster_id, region, zone)

    def advance_clock(self, seconds: float) -> float:
        return self.app.advance_clock(seconds)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pki_ceremony.rehearsal.server",
        description="Local stand-in for AWS Private CA (acm-pca) and CloudHSM v2.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--state-file", default=None, help="persist state to this JSON file")
    parser.add_argument("--pending-polls", type=int, default=1,
                        help="polls that see a new CSR/certificate/HSM/backup as in progress (default 1)")
    parser.add_argument("--not-after-beyond-issuer", choices=("cap", "reject"), default="cap")
    parser.add_argument("--verbose", action="store_true", help="log each HTTP request to stderr")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        settings = Settings(pending_polls=args.pending_polls,
                            not_after_beyond_issuer=args.not_after_beyond_issuer)
        server = StandInServer(args.host, args.port, args.state_file, settings=settings, verbose=args.verbose)
    except (StateError, ValueError, OSError) as exc:
        print(f"stand-in: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        url = server.start()
    except OSError as exc:
        print(f"stand-in: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    print(f"READY {url}", flush=True)
    try:
        while not stop.wait(0.1):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
