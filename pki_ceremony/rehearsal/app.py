"""The stand-in without the network: state, clock, both services, call counters and hooks.

``StandInApp.handle_aws`` takes one AWS JSON request (target header, body, authorization
header) and returns (HTTP status, JSON payload). Requests are serialised by one lock;
the state is persisted after each request (when it changed); HSM lifecycle hooks run
after the lock is released and before the answer goes out, so a hook may take its time
but must not call the stand-in itself.

``handle_admin`` serves the introspection endpoints under ``/_standin/``:

* ``GET  /_standin/health`` -> ``{"ok": true}``
* ``GET  /_standin/calls`` -> ``{"calls": {"acm-pca": {"Op": n}, "cloudhsmv2": {...}},
  "mutating": n}`` (every request counts, failed ones too)
* ``POST /_standin/reset`` -> zero the counters; body ``{"state": true}`` also wipes the state
* ``GET  /_standin/clock`` / ``POST /_standin/clock`` with ``{"advance_seconds": n}``
"""

from __future__ import annotations

import json
import sys
import threading
import traceback
from collections import Counter
from typing import Any, Callable, Optional

from .clock import Clock
from .hsm_service import HOOK_HSM_CREATED, HOOK_LAST_HSM_DELETED, HsmService
from .pca_service import PcaService
from .protocol import AwsError, RequestContext, region_from_authorization, split_target
from .settings import Settings
from .store import Store

HsmHook = Callable[[str, Optional[str]], None]


class StandInApp:
    def __init__(
        self,
        state_file: str | None = None,
        settings: Settings | None = None,
        on_hsm_created: HsmHook | None = None,
        on_last_hsm_deleted: HsmHook | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.store = Store(state_file)
        self.clock = Clock(self.store)
        self.on_hsm_created = on_hsm_created
        self.on_last_hsm_deleted = on_last_hsm_deleted
        self.lock = threading.Lock()
        services = (PcaService(self.store, self.clock, self.settings),
                    HsmService(self.store, self.clock, self.settings))
        self._services = {service.TARGET_PREFIX: service for service in services}
        self._operations = {service.TARGET_PREFIX: service.operations() for service in services}
        self._calls: dict[str, Counter[str]] = {service.NAME: Counter() for service in services}

    # ---- AWS requests -----------------------------------------------------------------

    def handle_aws(self, target: str | None, body: bytes, authorization: str | None) -> tuple[int, dict[str, Any]]:
        ctx = RequestContext(region=region_from_authorization(authorization))
        with self.lock:
            status, payload = self._dispatch(target, body, ctx)
            self.store.persist()
        if status == 200 and ctx.events:
            failure = self._run_hooks(ctx.events)
            if failure is not None:
                return 400, failure.body()
        return status, payload

    def _dispatch(self, target: str | None, body: bytes, ctx: RequestContext) -> tuple[int, dict[str, Any]]:
        try:
            prefix, operation = split_target(target)
            service = self._services.get(prefix)
            if service is None:
                self._calls.setdefault("unknown", Counter())[f"{prefix}.{operation}"] += 1
                raise AwsError("UnknownOperationException", f"Unknown service target prefix {prefix!r}.")
            self._calls[service.NAME][operation] += 1
            handler = self._operations[prefix].get(operation)
            if handler is None:
                raise AwsError("UnknownOperationException",
                               f"The local stand-in does not implement {service.NAME} {operation}.")
            try:
                params = json.loads(body.decode("utf-8") or "{}")
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise AwsError("SerializationException", f"The request body is not JSON: {exc}") from exc
            if not isinstance(params, dict):
                raise AwsError("SerializationException", "The request body must be a JSON object.")
            return 200, handler(params, ctx)
        except AwsError as error:
            return error.status, error.body()
        except Exception as exc:  # a bug in the stand-in: say so loudly
            traceback.print_exc(file=sys.stderr)
            return 500, {"__type": "InternalFailure", "message": f"stand-in failure: {exc!r}"}

    def _run_hooks(self, events: list[tuple[str, tuple[Any, ...]]]) -> AwsError | None:
        hooks = {HOOK_HSM_CREATED: self.on_hsm_created, HOOK_LAST_HSM_DELETED: self.on_last_hsm_deleted}
        for name, args in events:
            hook = hooks.get(name)
            if hook is None:
                continue
            try:
                hook(*args)
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                return AwsError("CloudHsmInternalFailureException", f"stand-in hook {name} failed: {exc!r}")
        return None

    # ---- introspection ----------------------------------------------------------------

    def calls(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {name: dict(counter) for name, counter in self._calls.items()}

    def mutating_calls(self) -> int:
        with self.lock:
            return sum(
                count
                for service in self._services.values()
                for operation, count in self._calls[service.NAME].items()
                if operation in service.MUTATING
            )

    def reset(self, state: bool = False) -> None:
        with self.lock:
            self._calls = {service.NAME: Counter() for service in self._services.values()}
            if state:
                self.store.wipe()
                self.store.persist()

    def seed_cluster(self, cluster_id: str, region: str, zone: str) -> bool:
        from .hsm_service import HsmService

        service = next(s for s in self._services.values() if isinstance(s, HsmService))
        with self.lock:
            made = service.seed_cluster(cluster_id, region, zone)
            self.store.persist()
        return made

    def advance_clock(self, seconds: float) -> float:
        with self.lock:
            now = self.clock.advance(seconds)
            self.store.persist()
        return now.timestamp()

    def handle_admin(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            payload = json.loads(body.decode("utf-8") or "{}") if body else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            return 400, {"error": "body must be JSON"}
        route = (method, path.rstrip("/"))
        if route == ("GET", "/_standin/health"):
            return 200, {"ok": True}
        if route == ("GET", "/_standin/calls"):
            return 200, {"calls": self.calls(), "mutating": self.mutating_calls()}
        if route == ("POST", "/_standin/reset"):
            self.reset(state=bool(payload.get("state", False)))
            return 200, {"ok": True}
        if route == ("GET", "/_standin/clock"):
            return 200, {"now": self.clock.now().timestamp(), "offset_seconds": self.clock.offset_seconds}
        if route == ("POST", "/_standin/clock"):
            seconds = payload.get("advance_seconds")
            if not isinstance(seconds, (int, float)) or seconds < 0:
                return 400, {"error": "advance_seconds must be a number >= 0"}
            now = self.advance_clock(seconds)
            return 200, {"now": now, "offset_seconds": self.clock.offset_seconds}
        return 404, {"error": f"no stand-in endpoint {method} {path}"}
