"""The server's core: request pipeline (latency, auth, faults, dispatch, stats) and the operations
shared by the Python API and the admin endpoints. It knows nothing about sockets."""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from local_openai import admin, chat_endpoints
from local_openai.completions import (
    DEFAULT_MODEL,
    SEEDED_MESSAGES,
    build_completion,
    new_completion_id,
    now,
    stored_messages,
)
from local_openai.error_responses import ErrorResponse, for_status, invalid_request, method_not_allowed, unknown_url
from local_openai.faults import FaultInjector, ScriptedFault
from local_openai.knobs import Knobs
from local_openai.metadata import validate_metadata
from local_openai.routing import Endpoint, Route, match_v1
from local_openai.stats import Stats
from local_openai.store import CompletionStore
from local_openai.wire import Request, Response, error_response, new_request_id

SEED_FIELDS = frozenset({"id", "metadata", "model", "messages", "created"})
# Anything that survives as one URL path segment; ids are matched after percent-decoding.
_SEED_ID = re.compile(r"^[^/\s\x00-\x1f\x7f]{1,256}$")


class LocalOpenAIApp:
    def __init__(
        self,
        knobs: Knobs,
        *,
        seed_completions: Iterable[Mapping[str, Any]] = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._initial_knobs = knobs
        self._knobs = knobs  # replaced as a whole, never mutated: reads need no lock
        self._initial_seeds = [dict(spec) for spec in seed_completions]
        self._sleep = sleep
        self.store = CompletionStore()
        self.stats = Stats()
        self.faults = FaultInjector(knobs.seed)
        for spec in self._initial_seeds:
            self.seed_completion(spec)

    # ----- operations (Python API and admin endpoints) -----

    @property
    def knobs(self) -> Knobs:
        return self._knobs

    def configure(self, changes: Mapping[str, Any]) -> Knobs:
        """Apply knob changes (``ValueError`` if invalid); the 429 cycle and random draws restart."""
        knobs = self._knobs.with_changes(changes)
        self._knobs = knobs
        self.faults.restart(knobs.seed)
        return knobs

    def push_faults(self, faults: Sequence[ScriptedFault]) -> int:
        return self.faults.push(list(faults))

    def seed_completion(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Store a completion directly (``id``, ``metadata``, ``model``, ``messages``, ``created`` all
        optional); an existing id is replaced. Raises a 400 ``ErrorResponse`` for invalid input."""
        unknown = sorted(set(spec) - SEED_FIELDS)
        if unknown:
            raise invalid_request(f"Unknown field(s): {', '.join(unknown)}", param=unknown[0])
        completion_id = spec.get("id")
        if completion_id is None:
            completion_id = new_completion_id()
        if not isinstance(completion_id, str) or not _SEED_ID.match(completion_id):
            raise invalid_request(
                "'id' must be 1-256 characters without '/', whitespace or control characters.", param="id"
            )
        model = spec.get("model")
        if model is None:
            model = DEFAULT_MODEL
        if not isinstance(model, str) or not model:
            raise invalid_request("'model' must be a string.", param="model")
        created = spec.get("created")
        if created is None:
            created = now()
        if isinstance(created, bool) or not isinstance(created, int) or created < 0:
            raise invalid_request("'created' must be a non-negative integer.", param="created")
        raw_messages = spec.get("messages")
        messages = SEEDED_MESSAGES if raw_messages is None else chat_endpoints.request_messages(raw_messages)
        completion = build_completion(
            completion_id=completion_id,
            model=model,
            messages=messages,
            metadata=validate_metadata(spec.get("metadata")),
            created=created,
        )
        return self.store.put(completion, stored_messages(completion_id, messages))

    def stats_snapshot(self) -> dict[str, Any]:
        snapshot = self.stats.snapshot()
        snapshot["stored_completions"] = len(self.store)
        snapshot["pending_faults"] = sum(fault["remaining"] for fault in self.faults.pending())
        return snapshot

    def reset(self) -> None:
        """Back to the state right after construction: knobs, seeded completions, no faults or stats."""
        self._knobs = self._initial_knobs
        self.faults.clear()
        self.faults.restart(self._initial_knobs.seed)
        self.stats.clear()
        self.store.clear()
        for spec in self._initial_seeds:
            self.seed_completion(spec)

    # ----- request pipeline -----

    def handle(self, request: Request) -> Response:
        """Answer one request; every response carries an ``x-request-id``."""
        if request.path == "/v1" or request.path.startswith("/v1/"):
            response = self._handle_v1(request)
        elif request.path.startswith("/_local/"):
            try:
                response = admin.handle(self, request)
            except ErrorResponse as error:
                response = error_response(error)
        else:
            response = error_response(unknown_url(request.method, request.path))
        response.headers["x-request-id"] = new_request_id()
        return response

    def _handle_v1(self, request: Request) -> Response:
        route = match_v1(request.method, request.path)
        self.stats.record_request(route.template)
        response = self._answer_v1(request, route, self._knobs)
        self.stats.record_status("reset" if response.reset else response.status)
        return response

    def _answer_v1(self, request: Request, route: Route, knobs: Knobs) -> Response:
        latency = self.faults.latency(knobs)
        if latency > 0:
            self._sleep(latency)
        try:
            _authenticate(request, knobs)
            decision = self.faults.decide(knobs, request.method, route.completion_id)
            if decision is not None:
                self.stats.record_fault(decision.source)
                if decision.delay > 0:
                    self._sleep(decision.delay)
                if decision.reset:
                    return Response(0, reset=True)
                if decision.status is not None:
                    response = error_response(
                        for_status(decision.status, completion_id=route.completion_id, reason=decision.reason)
                    )
                    response.headers.update(decision.headers)
                    return response
            return self._dispatch(request, route)
        except ErrorResponse as error:
            return error_response(error)

    def _dispatch(self, request: Request, route: Route) -> Response:
        completion_id = route.completion_id or ""
        match route.endpoint:
            case Endpoint.CREATE:
                return chat_endpoints.create_completion(self.store, request)
            case Endpoint.LIST:
                return chat_endpoints.list_completions(self.store, request)
            case Endpoint.RETRIEVE:
                return chat_endpoints.retrieve_completion(self.store, completion_id)
            case Endpoint.UPDATE:
                merge = self._knobs.metadata_update == "merge"
                return chat_endpoints.update_completion(self.store, self.stats, completion_id, request, merge=merge)
            case Endpoint.DELETE:
                return chat_endpoints.delete_completion(self.store, completion_id)
            case Endpoint.MESSAGES:
                return chat_endpoints.list_messages(self.store, completion_id, request)
            case None if route.allowed:
                raise method_not_allowed(request.method, request.path, route.allowed)
            case None:
                raise unknown_url(request.method, request.path)


def _authenticate(request: Request, knobs: Knobs) -> None:
    """Require ``Authorization: Bearer <token>``; when a key is configured the token must equal it.

    The error messages never echo the token."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ErrorResponse(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="missing_api_key",
        )
    if knobs.api_key is not None and not hmac.compare_digest(token.encode(), knobs.api_key.encode()):
        raise ErrorResponse(401, "Incorrect API key provided.", code="invalid_api_key")
