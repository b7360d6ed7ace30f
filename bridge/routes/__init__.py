"""The server's doors, one module each: sse and ws (the legacy protocols), speech (the
OpenAI-style speech API the LiveKit agent uses), tokens (LiveKit join tokens), ops (health,
readiness, metrics, reset) and page (the web client)."""
