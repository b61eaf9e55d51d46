"""``python -m local_openai``: the local OpenAI server in the foreground (see `serve_command.py`)."""

from local_openai.serve_command import serve

serve.main(prog_name="python -m local_openai")
