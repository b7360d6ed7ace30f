"""`parle`: the command line: `serve`, `agent`, `turn`, `demo`, `level`, `models [fetch]`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from parle.audio import AudioChunk, concat_chunks, decode_audio
from parle.config import ConfigError, Settings, load_settings
from parle.errors import ParleError
from parle.models import ModelNotFoundError, profile_specs, resolve
from parle.runtime import ParleRuntime
from parle.sessions import SessionMemory, session_file
from parle.turn import AudioEvent, CompleteEvent, TurnOptions

EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3


def _fail(message: str, code: int) -> int:
    print(f"parle: error: {message}", file=sys.stderr)
    return code


# --- parle models -----------------------------------------------------------------------------


def cmd_models(settings: Settings, *, fetch: bool) -> int:
    """List what the profile needs and where each model was found (and prepare it with fetch)."""
    missing = 0
    print(f"profile: {settings.profile}")
    for spec in profile_specs(settings):
        result = resolve(spec, settings, download=fetch, prepare=fetch)
        if result.resolved is not None:
            where = f"{result.resolved.source}: {result.resolved.path}"
        elif spec.served_elsewhere:
            where = f"served by the LLM server ({spec.hint})"
        else:
            missing += 1
            where = f"MISSING ({'; '.join(result.tried)}); {spec.hint}"
        print(f"  {spec.role:<11} {spec.model_id:<48} {where}")
    return 1 if missing else 0


# --- parle turn -------------------------------------------------------------------------------


def cmd_turn(settings: Settings, args: argparse.Namespace) -> int:
    """One turn on an audio file; a named session's memory is kept between runs."""
    try:
        data = Path(args.audio).read_bytes()
    except OSError as exc:
        return _fail(f"cannot read {args.audio}: {exc.strerror}", EXIT_BAD_INPUT)
    try:
        memory_path = session_file(settings.sessions_dir, args.session) if args.session else None
    except ValueError as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    # Refuse bad audio before paying for model loading.
    decode_audio(
        data,
        max_seconds=settings.max_audio_seconds,
        min_seconds=settings.min_audio_seconds,
        max_bytes=settings.max_upload_bytes,
    )
    memory = SessionMemory(settings.history_turns)
    if memory_path is not None and memory_path.exists():
        memory = SessionMemory.from_json(memory_path.read_text("utf-8"), settings.history_turns)

    async def turn() -> tuple[CompleteEvent, AudioChunk]:
        async with ParleRuntime(settings) as runtime:
            return await _run_turn(runtime, data, memory, sequential=args.sequential)

    complete, audio = asyncio.run(turn())
    if memory_path is not None:
        memory_path.parent.mkdir(parents=True, exist_ok=True)
        memory_path.write_text(memory.to_json(), "utf-8")
    _report(complete, audio, Path(args.out), as_json=args.json)
    return 0


async def _run_turn(
    runtime: ParleRuntime, data: bytes, memory: SessionMemory, *, sequential: bool = False
) -> tuple[CompleteEvent, AudioChunk]:
    assert runtime.pipeline is not None
    chunks: list[AudioChunk] = []
    complete: CompleteEvent | None = None
    options = TurnOptions(sequential=sequential)
    async for event in runtime.pipeline.run(data, session=memory, options=options):
        if isinstance(event, AudioEvent):
            chunks.append(event.chunk)
        elif isinstance(event, CompleteEvent):
            complete = event
    assert complete is not None
    return complete, concat_chunks(chunks, sample_rate=runtime.pipeline.synthesizer.sample_rate)


def _report(complete: CompleteEvent, audio: AudioChunk, out: Path, *, as_json: bool) -> None:
    out.write_bytes(audio.to_wav())
    timing = complete.timings.as_dict()
    if as_json:
        summary = {"transcript": complete.transcript, "response": complete.response}
        print(json.dumps({**summary, "timing": timing}, ensure_ascii=False))
        return
    print(f"learner: {complete.transcript or '(no speech heard)'}")
    print(f"tutor:   {complete.response}")
    print("timing:  " + ", ".join(f"{k}={v}" for k, v in timing.items() if v is not None))
    print(f"audio:   {out} ({audio.duration_s:.2f} s at {audio.sample_rate} Hz)")


DEMO_LINE = "Olá! Meu nome é Ana e eu sou dos Estados Unidos. Eu gosto de aprender português."


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """A learner line spoken by PARLE's own TTS, answered by a whole turn: no files needed."""

    async def demo() -> tuple[CompleteEvent, AudioChunk]:
        async with ParleRuntime(settings) as runtime:
            assert runtime.synthesizer is not None
            learner = [c async for c in runtime.synthesizer.synthesize(DEMO_LINE)]
            print(f"demo learner says: {DEMO_LINE}")
            memory = SessionMemory(settings.history_turns)
            return await _run_turn(runtime, concat_chunks(learner).to_wav(), memory)

    complete, audio = asyncio.run(demo())
    _report(complete, audio, Path(args.out), as_json=False)
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """The PARLE server; engines load in the background and `/ready` says when."""
    from bridge.app import create_app
    from bridge.security import keyless_exposure
    from bridge.serving import serve

    host = args.host or settings.host
    port = args.port or settings.port
    insecure = args.insecure_no_keys or settings.insecure_no_keys
    refusal = keyless_exposure(host, keys=bool(settings.api_key_list), insecure_no_keys=insecure)
    if refusal is not None:
        print(f"parle serve: {refusal}", file=sys.stderr)
        return 2
    # The keyless guard knows the server by the address it listens on.
    settings = settings.model_copy(update={"host": host, "port": port})
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(f"PARLE ({settings.profile} profile) on http://{shown}:{port}/ - loading engines...")
    # uvicorn's settings (slow-client bounds, connection limit) and its JSON logging live in
    # bridge/serving.py, where the tests run the server with exactly them.
    serve(create_app(settings), settings, host=host, port=port, log_level=args.log_level)
    return 0


def cmd_level(settings: Settings, args: argparse.Namespace) -> int:
    """The CEFR level of one learner utterance, as the active profile's estimator sees it."""
    from parle.tutor.policy import build_estimator

    estimator = build_estimator(settings)
    estimator.load()
    estimate = estimator.estimate(args.text)
    # `features` says why (the lexical estimator's grammar, vocabulary and clause features;
    # empty for the mdeberta classifier).
    print(
        json.dumps(
            {
                "level": estimate.level,
                "value": estimate.value,
                "scores": estimate.scores,
                "features": estimate.features,
            },
            ensure_ascii=False,
        )
    )
    return 0


def cmd_agent(args: argparse.Namespace) -> int:
    """LiveKit's worker CLI (`start`, `dev`, `console`, `download-files`) on PARLE's agent."""
    from livekit.agents import cli

    from agent.plugins._http import settings
    from agent.worker import build_server, log_through_livekit_cli

    log_through_livekit_cli()
    sys.argv = ["parle agent", args.mode, *args.rest]
    cli.run_app(build_server(settings()))
    return 0


def cmd_sip(settings: Settings, args: argparse.Namespace) -> int:
    """The phone door's trunk and dispatch rule on the LiveKit server (`agent/sip.py`)."""
    from livekit import api

    from agent import sip

    if not settings.livekit_configured:
        return _fail("set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET", EXIT_BAD_INPUT)
    try:
        wanted = (
            sip.read_wanted(Path(args.trunk), Path(args.rule)) if args.action == "setup" else None
        )
    except sip.SipSetupError as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)

    async def run() -> list[str]:
        url = settings.livekit_url.replace("wss://", "https://").replace("ws://", "http://")
        async with api.LiveKitAPI(url, settings.livekit_api_key, settings.livekit_api_secret) as lk:
            if wanted is None:
                return await sip.status(lk)
            return await sip.setup(lk, wanted, dry_run=args.dry_run)

    try:
        lines = asyncio.run(run())
    except api.TwirpError as exc:
        return _fail(f"the LiveKit server refused: {exc.message} ({exc.code})", EXIT_UNAVAILABLE)
    except OSError as exc:
        return _fail(f"the LiveKit server did not answer: {exc}", EXIT_UNAVAILABLE)
    print("\n".join(lines))
    return 0


# --- entry point ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parle", description="PARLE, a real-time speech-to-speech Portuguese tutor."
    )
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default)")
    sub = parser.add_subparsers(dest="command", required=True)

    turn = sub.add_parser("turn", help="run one whole turn on an audio file")
    turn.add_argument("audio", help="the learner's audio (WAV, WebM/Opus, OGG, MP3, FLAC)")
    turn.add_argument("--out", required=True, help="where to write the reply (24 kHz WAV)")
    turn.add_argument("--json", action="store_true", help="print one JSON object")
    turn.add_argument(
        "--sequential", action="store_true", help="STT, whole reply, then whole TTS (baseline)"
    )
    turn.add_argument("--session", help="a name: the conversation continues across runs")

    serve = sub.add_parser("serve", help="the PARLE server: web client, SSE, WebSocket, API")
    serve.add_argument("--host", help="address to listen on (default PARLE_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default PARLE_PORT, 8000)")
    serve.add_argument(
        "--insecure-no-keys",
        action="store_true",
        help="serve without API keys on a non-loopback address (PARLE_INSECURE_NO_KEYS): "
        "anyone who reaches it reads and erases every learner",
    )

    demo = sub.add_parser("demo", help="a whole turn on a learner line PARLE speaks itself")
    demo.add_argument("--out", default="reply.wav", help="where to write the reply")

    agent = sub.add_parser("agent", help="the LiveKit agent worker (LiveKit's CLI verbs)")
    agent.add_argument("mode", choices=["start", "dev", "console", "download-files"])
    agent.add_argument("rest", nargs=argparse.REMAINDER, help="passed to LiveKit's CLI")

    level = sub.add_parser("level", help="the CEFR level of a learner utterance")
    level.add_argument("--text", required=True, help="what the learner said")

    phone = sub.add_parser("sip", help="the phone door's SIP trunk and dispatch rule on LiveKit")
    phone.add_argument("action", choices=["setup", "status"])
    phone.add_argument("--dry-run", action="store_true", help="say what setup would do, only")
    phone.add_argument("--trunk", default="deploy/sip/inbound-trunk.json", help="the trunk")
    phone.add_argument("--rule", default="deploy/sip/dispatch-rule.json", help="the rule")

    models = sub.add_parser("models", help="list the models the profile needs and their source")
    models.add_argument("action", nargs="?", choices=["list", "fetch"], default="list")
    return parser


def main(argv: list[str] | None = None) -> int:
    from parle.logs import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        settings = load_settings()
    except ConfigError as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    try:
        if args.command == "models":
            return cmd_models(settings, fetch=args.action == "fetch")
        if args.command == "turn":
            return cmd_turn(settings, args)
        if args.command == "demo":
            return cmd_demo(settings, args)
        if args.command == "serve":
            return cmd_serve(settings, args)
        if args.command == "level":
            return cmd_level(settings, args)
        if args.command == "agent":
            return cmd_agent(args)
        if args.command == "sip":
            return cmd_sip(settings, args)
    except ParleError as exc:
        code = EXIT_BAD_INPUT if exc.code == "bad_audio" else EXIT_UNAVAILABLE
        return _fail(str(exc), code)
    except ModelNotFoundError as exc:
        return _fail(str(exc), EXIT_UNAVAILABLE)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
