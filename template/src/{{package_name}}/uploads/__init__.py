"""File uploads, streamed to disk."""
