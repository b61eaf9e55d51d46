"""Move dead-lettered tag requests back to the tag-request queue (`make redrive`, `completion-tagger redrive`).

Two ways, same outcome:

- **SQS's message-move task** (AWS, `move_task.py`): `StartMessageMoveTask` from the dead-letter queue to the
  tag-request queue, named explicitly (the dead-letter queue also receives the upstream rule's failed
  deliveries, which "back to the source queue" could not route), then `ListMessageMoveTasks` until
  the task is COMPLETED, FAILED or CANCELLED. SQS does the moving; this only starts and watches it.
  SQS moves bodies unchanged: a message without `issued_at` is ordered by its new SentTimestamp.
- **Client-side move** (`--local`, `client_move.py`): for emulators without the move task (moto has none): receive
  from the dead-letter queue, send each message to the queue with the same body (given its original
  SentTimestamp as `issued_at` where it has none, `order.py`) and message attributes, and only then
  delete it from the dead-letter queue. A crash between the send and the
  delete leaves the message in both queues, a duplicate that the function's idempotency absorbs;
  no order of failures loses one. Bounded: a message is sent at most once per run, and the run stops
  at the first empty receive (or after `max_messages`).

Queue URLs and ARNs come from the stack's outputs (`TagRequestQueueUrl`, `TagRequestQueueArn`,
`TagRequestDeadLetterQueueUrl`, `TagRequestDeadLetterQueueArn`) or from explicit URLs (`queue_pair.py`).
The command line is `command.py`.
"""
