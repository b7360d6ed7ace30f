"""The LiveKit agent worker: thin plugins onto the PARLE server and the LLM server."""
