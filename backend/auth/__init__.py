"""Staff and app-user authentication, sessions and roles."""
