"""The transactional outbox: work to do after a request, done by a worker with retries."""
