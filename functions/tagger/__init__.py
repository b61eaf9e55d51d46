"""completion-tagger: tags stored OpenAI chat completions from SQS tag requests."""

__version__ = "0.1.0"
