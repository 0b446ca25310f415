"""Database access: the declarative base, the engine and one session per request."""
