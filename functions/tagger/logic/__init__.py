"""What happens to a record and to a batch: the rules, kept apart from the clients that reach the outside world."""
