"""PARLE: a real-time speech-to-speech Portuguese tutor (core library)."""

__version__ = "0.1.0"
