"""Hash-chained audit trail."""
