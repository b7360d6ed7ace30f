"""What the tests and the benchmarks share: real servers run on loopback (uvicorn in a thread,
livekit-server with PARLE's server and agent), and the doubles that stand in for an LLM server
or for a learner's microphone and loudspeaker. Not part of the installed package."""
