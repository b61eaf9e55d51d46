"""What the bench measures of a function's AWS calls it learns from hooks on the function's own botocore clients,
registered as they are made, so the function's code stays as it is deployed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def on_every_new_client(register: Callable[[Any], None]) -> None:
    """Hand every botocore client created from now on in this process (the function's, at its init) to
    `register`, which registers its event hooks on it."""
    import botocore.session  # noqa: PLC0415 - patched only when measuring

    original = botocore.session.Session.create_client

    def create_client(session: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(session, *args, **kwargs)
        register(client)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign,assignment]
