"""The outside world: the OpenAI API over httpx, and DynamoDB, EventBridge, SQS and Secrets Manager over boto3."""
