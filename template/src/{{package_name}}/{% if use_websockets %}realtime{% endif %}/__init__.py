"""Realtime: WebSocket rooms whose messages fan out to every instance of the service."""
