"""The unauthenticated ``/_local/*`` endpoints that tests and operators use to drive the server.

None of them is counted in the stats or subject to latency and faults.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from local_openai.error_responses import invalid_request, not_found, unknown_url
from local_openai.faults import ScriptedFault
from local_openai.knobs import Knobs
from local_openai.wire import Request, Response, json_response, parse_json_object, parse_json_value

if TYPE_CHECKING:
    from local_openai.request_pipeline import LocalOpenAIApp

_COMPLETION = re.compile(r"^/_local/completions/([^/]+)$")


def handle(app: LocalOpenAIApp, request: Request) -> Response:
    method, path = request.method, request.path.rstrip("/")
    match (method, path):
        case ("GET", "/_local/health"):
            return json_response({"status": "ok"})
        case ("GET", "/_local/config"):
            return json_response(app.knobs.public())
        case ("POST", "/_local/config"):
            return json_response(_configure(app, parse_json_object(request.body, allow_empty=True)).public())
        case ("GET", "/_local/faults"):
            return json_response({"pending": app.faults.pending()})
        case ("POST", "/_local/faults"):
            faults = parse_faults(parse_json_value(request.body))
            return json_response({"queued": len(faults), "pending": app.push_faults(faults)})
        case ("DELETE", "/_local/faults"):
            app.faults.clear()
            return json_response({"pending": 0})
        case ("GET", "/_local/stats"):
            return json_response(app.stats_snapshot())
        case ("POST", "/_local/reset"):
            app.reset()
            return json_response({"reset": True})
        case ("POST", "/_local/completions"):
            return json_response(app.seed_completion(parse_json_object(request.body, allow_empty=True)))
    if method == "GET" and (found := _COMPLETION.match(path)):
        completion_id = unquote(found.group(1))
        completion = app.store.get(completion_id)
        if completion is None:
            raise not_found(completion_id)
        return json_response(completion)
    raise unknown_url(method, request.path)


def parse_faults(body: Any) -> list[ScriptedFault]:
    """One fault object or a list of them; invalid ones are a 400."""
    items = body if isinstance(body, list) else [body]
    try:
        return [ScriptedFault.from_json(item) for item in items]
    except (ValueError, TypeError) as error:
        raise invalid_request(str(error)) from None


def _configure(app: LocalOpenAIApp, changes: dict[str, Any]) -> Knobs:
    try:
        return app.configure(changes)
    except (ValueError, TypeError) as error:
        raise invalid_request(str(error)) from None
