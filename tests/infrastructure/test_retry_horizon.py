"""A message's retry horizon stays inside the idempotency expiry with the template's defaults.

CloudFormation's `Rules` have no arithmetic (only equality and membership tests), so the template cannot
refuse a combination of parameters whose horizon is too long; the function refuses the part it can see at
start-up (`tagger.config`), and docs/deploying.md says how to size the rest. This checks the defaults.
"""

from __future__ import annotations

from typing import Any

from tagger.config import Settings
from tests.infrastructure._template import parameter_defaults


def test_the_default_horizon_fits_the_default_expiry_for_every_function_timeout(template: dict[str, Any]) -> None:
    defaults = parameter_defaults(template)
    deliveries = int(defaults["MaxReceiveCount"])
    expiry = int(defaults["IdempotencyExpirySeconds"])
    backoff_max = Settings.model_fields["retry_backoff_max_seconds"].default  # the template leaves it at default
    visibilities = template["Mappings"]["VisibilityTimeoutByFunctionTimeout"]
    for timeout in template["Parameters"]["FunctionTimeoutSeconds"]["AllowedValues"]:
        visibility = int(visibilities[str(timeout)]["VisibilityTimeout"])
        horizon = deliveries * (backoff_max + visibility)
        assert horizon < expiry, (timeout, horizon, expiry)


def test_the_template_defaults_pass_the_function_s_own_check(template: dict[str, Any]) -> None:
    defaults = parameter_defaults(template)
    settings = Settings.from_environment(
        {
            "IDEMPOTENCY_TABLE_NAME": "table",
            "OPENAI_API_KEY_SECRET": "secret",
            "MAX_RECEIVE_COUNT": str(defaults["MaxReceiveCount"]),
            "IDEMPOTENCY_EXPIRY_SECONDS": str(defaults["IdempotencyExpirySeconds"]),
        }
    )
    assert settings.max_receive_count * settings.retry_backoff_max_seconds < settings.idempotency_expiry_seconds
