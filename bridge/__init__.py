"""The PARLE server: legacy SSE and WebSocket protocols, the speech API, operations, and the
web client, all serving turns from the one set of engines the process loads."""
