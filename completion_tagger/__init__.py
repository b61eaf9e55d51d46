"""The producer side of completion-tagger: validate tag requests with the function's own models and send them."""

from completion_tagger.api import UsageError, send_tag_requests
from completion_tagger.send_report import SendInterrupted, SendReport
from completion_tagger.waiting.send_and_wait import ResultsLocation

__all__ = ["ResultsLocation", "SendInterrupted", "SendReport", "UsageError", "send_tag_requests"]
