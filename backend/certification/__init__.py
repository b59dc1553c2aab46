"""Monthly certification: periods, sessions, attempts, review, home visits, passive evidence, reminders."""
