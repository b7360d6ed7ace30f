"""LiveKit Agents plugins for PARLE: speech to text and text to speech through the PARLE
server's speech API, the tutor LLM through its OpenAI-compatible server."""

from agent.plugins.llm import ParleLLM
from agent.plugins.stt import ParleSTT
from agent.plugins.tts import ParleTTS

__all__ = ["ParleLLM", "ParleSTT", "ParleTTS"]
