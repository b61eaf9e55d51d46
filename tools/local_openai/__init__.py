"""A local, OpenAI-compatible server of stored chat completions, with fault injection.

Standard library only: it also serves ``sam local invoke`` (``make local-services``).
"""

from local_openai.completions import CANNED_REPLY
from local_openai.server import LocalOpenAIServer

__all__ = ["CANNED_REPLY", "LocalOpenAIServer"]
