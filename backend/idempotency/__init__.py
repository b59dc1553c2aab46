"""Idempotency keys: a create retried with the same `Idempotency-Key` happens once and answers the same."""
