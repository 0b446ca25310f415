"""Kiln: a Copier template and CLI for production FastAPI services."""
