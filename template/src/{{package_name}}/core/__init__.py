"""Cross-cutting concerns: configuration, logging, errors and middleware."""
