"""The embedded local stack: moto's server as the AWS endpoint, an SQS event source mapping, and `run`.

`python -m local_stack run` (what `make run` calls) provisions what `template.yaml` declares on moto,
points the Lambda handler at it and at the local OpenAI server, sends sample tag requests and runs the
handler the way Lambda's SQS event source mapping would, until every message has ended.
"""
