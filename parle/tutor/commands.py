"""Spoken commands: what a learner may say to steer the lesson itself rather than to talk, in
Portuguese or English, recognized in the transcript without the LLM.

    mais devagar / slower                 the tutor speaks one step slower, for the session
    mais rápido / faster                  one step faster
    repete / pode repetir? / repeat       the last reply again (its cached audio)
    mudar para o nível B1 / level B1      the session's level
    em inglês? / tradução / translate     a one-sentence English hint of the last reply (A1-A2)
    terminar / acabou a aula / that's all / tchau / goodbye
                                          the lesson ends with a recap of its corrections

A command is the whole utterance, give or take courtesy words ("por favor", "professora",
"ok"...): an ordinary sentence that merely contains the words ("eu falo mais devagar quando
estou cansado") is never one. Matching ignores case, accents and punctuation, and accepts
the spellings Whisper gives the same words ("de vagar", "B-1", "bê um", "that's all.").

`match_command` is the one grammar for every door: the server's `TurnPipeline` (through
`parle.lessons`) and the LiveKit `TutorAgent` both call it, and both answer with the texts
and decisions below.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from parle.engines.base import ChatMessage
from parle.tutor.levels import LEVELS

CommandKind = Literal["slower", "faster", "repeat", "level", "translate", "end"]


@dataclass(frozen=True)
class Command:
    kind: CommandKind
    level: str | None = None  # `level`: the level asked for, A1..C2


def normalize(text: str) -> str:
    """Lower case, no accents, punctuation as spaces, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", plain).split())


# Courtesy and hesitation around a command: they never make a command by themselves.
_LEAD = (
    r"(?:(?:ok|okay|ta|tudo bem|bom|entao|hum+|hm+|uh+|eh|ah|ai|so|well|sorry|"
    r"desculpa|desculpe|com licenca|excuse me|professora|professor|parle|"
    r"obrigad[oa]|valeu|thanks|thank you|muito obrigad[oa])\s+)*"
)
_TAIL = (
    r"(?:\s+(?:por favor|please|professora|professor|parle|ok|obrigad[oa]|thanks|"
    r"thank you|pra mim|para mim|um pouco|a little|a bit|agora|now))*"
)
_CAN = r"(?:(?:voce |vc |tu )?(?:pode|poderia|podia|consegue|da pra|da para) )"
_CAN_EN = r"(?:(?:can|could|would|will) you (?:please )?|please )"
_SPEAK = r"(?:(?:falar|fala|fale|falando) )"
_SPEAK_EN = r"(?:(?:speak|talk|go|say it) )"

_LETTER = {"a": "A", "ah": "A", "b": "B", "be": "B", "bee": "B", "c": "C", "ce": "C", "se": "C"}
_LETTER["see"] = _LETTER["sea"] = "C"
_DIGIT = {"1": "1", "um": "1", "uma": "1", "one": "1", "2": "2", "dois": "2", "duas": "2"}
_DIGIT["two"] = _DIGIT["to"] = _DIGIT["too"] = "2"
_LEVEL = (
    rf"(?P<letter>{'|'.join(sorted(_LETTER, key=len, reverse=True))})\s?"
    rf"(?P<digit>{'|'.join(sorted(_DIGIT, key=len, reverse=True))})"
)

_GRAMMAR: dict[CommandKind, tuple[str, ...]] = {
    "slower": (
        rf"{_CAN}?{_SPEAK}?(?:um pouco |bem )?mais (?:devagar|de vagar|lento|devagarinho)",
        rf"{_SPEAK}?(?:devagar|de vagar|devagarinho)",
        rf"{_CAN_EN}?{_SPEAK_EN}?(?:a (?:little |bit )?)?(?:more slowly|slower|slowly)",
        rf"{_CAN_EN}?slow (?:it )?down",
    ),
    "faster": (
        rf"{_CAN}?{_SPEAK}?(?:um pouco )?mais (?:rapido|depressa)",
        rf"{_CAN_EN}?{_SPEAK_EN}?(?:a (?:little |bit )?)?(?:faster|more quickly|quicker)",
        rf"{_CAN_EN}?speed (?:it )?up",
    ),
    "repeat": (
        rf"{_CAN}?(?:repete|repita|repetir|repeti)(?: isso| de novo| outra vez| mais uma vez)?",
        rf"{_CAN}?(?:fala|fale|diz|diga|falar|dizer) (?:isso )?(?:de novo|outra vez)",
        r"(?:de novo|outra vez|mais uma vez|como|como e que e|o que voce disse)",
        rf"{_CAN_EN}?(?:repeat|say (?:that|it) again)(?: that| it)?(?: again)?",
        r"(?:again|pardon|pardon me|come again|what did you say)",
    ),
    "level": (
        rf"(?:(?:quero |vamos |pode |podemos )?(?:mudar|muda|mude|trocar|troca|troque|passar|"
        rf"passa|passe|ir|ficar|falar)\s(?:para |pra |pro |no |ao )?)?(?:o )?nivel {_LEVEL}",
        rf"(?:(?:switch|change|go|move|set it|let s go)\s(?:back )?(?:to )?)?(?:the )?level "
        rf"{_LEVEL}",
    ),
    "translate": (
        r"(?:como (?:e|fica|seria|se diz)(?: isso)? )?(?:em|no) ingles",
        rf"{_CAN}?(?:traduz|traduza|traduzir|traduzi|traducao)(?: isso)?"
        r"(?: (?:para o|pro|pra|para|em) ingles)?",
        r"(?:o )?que (?:isso |voce disse )?(?:quer dizer|significa)",
        rf"{_CAN_EN}?(?:translate|translation)(?: that| it| this)?(?: (?:in|into|to) english)?",
        r"(?:in english|what does (?:that|it) mean(?: in english)?|what does that mean)",
    ),
    "end": (
        r"(?:(?:vamos|quero|pode|podemos|vou) )?(?:terminar|encerrar|parar|acabar)"
        r"(?: (?:a|nossa) aula| por hoje| por aqui)?",
        r"(?:a aula acabou|acabou a aula|fim da aula|acabou por hoje|por hoje e so|"
        r"e so por hoje|chega por hoje)",
        r"(?:that s all|that is all|that will be all|we re done|i m done|we are done)"
        r"(?: for today)?",
        r"(?:end|stop|finish) (?:the )?lesson",
        r"(?:tchau|tchau tchau|xau|ate logo|ate mais|ate a proxima|ate amanha|adeus|"
        r"goodbye|good bye|bye|bye bye|see you|see you later|see you soon)",
    ),
}

_PATTERNS = [
    (kind, re.compile(rf"{_LEAD}(?:{body}){_TAIL}"))
    for kind, bodies in _GRAMMAR.items()
    for body in bodies
]


def match_command(text: str) -> Command | None:
    """The command `text` is, or None for an ordinary utterance."""
    plain = normalize(text)
    if not plain or len(plain) > 80:  # a command is short; a long utterance is talk
        return None
    for kind, pattern in _PATTERNS:
        found = pattern.fullmatch(plain)
        if found is None:
            continue
        if kind == "level":
            level = _LETTER[found["letter"]] + _DIGIT[found["digit"]]
            return Command("level", level if level in LEVELS else None)
        return Command(kind)
    return None


# --- the phone's keypad ------------------------------------------------------------------

# A caller's keypad presses (DTMF) as the commands they stand for: a key is the learner saying
# its phrase, so it takes the spoken command's whole path. Other keys mean nothing.
KEYPAD: dict[str, str] = {"1": "repete", "2": "mais devagar", "3": "mais rápido", "0": "terminar"}
KEYPAD_HINT = "No teclado: 1 repete, 2 mais devagar, 3 mais rápido, 0 termina a aula."


def keypad_command(digit: str) -> str | None:
    """The command phrase a keypad key stands for; None for any other key."""
    return KEYPAD.get(digit.strip())


# --- what the tutor answers ---------------------------------------------------------------

SPEED_STEP = 0.1  # one "slower"/"faster"
MIN_SPEED, MAX_SPEED = 0.6, 1.4

SLOWER = "Claro, vou falar mais devagar."
SLOWEST = "Já estou falando bem devagar. Vamos com calma."
FASTER = "Tá bom, vou falar um pouco mais rápido."
FASTEST = "Já estou falando bem rápido."
NOTHING_YET = "Ainda não falei nada para repetir."
NOTHING_TO_TRANSLATE = "Ainda não falei nada para traduzir."
TRANSLATION_DECLINED = (
    "Vamos tentar sem tradução? No seu nível você consegue. Eu posso dizer de outro jeito."
)
TRANSLATION_LEVELS = ("A1", "A2")  # a translation helps a beginner; above, it is a crutch
TRANSLATION_MAX_TOKENS = 60


def level_changed(level: str) -> str:
    return f"Certo, a partir de agora falamos no nível {level}."


LEVEL_UNKNOWN = "Os níveis vão do A1 ao C2. Qual você quer?"


def speed_of(base: float, steps: int) -> float:
    """The speaking speed `steps` (one per "slower"/"faster") away from `base`."""
    return round(min(max(base + SPEED_STEP * steps, MIN_SPEED), MAX_SPEED), 2)


def translation_allowed(level: str) -> bool:
    return level.upper() in TRANSLATION_LEVELS


def translation_messages(reply: str) -> list[ChatMessage]:
    """A short translation request: the last reply, in one English sentence."""
    return [
        {
            "role": "system",
            "content": (
                "Translate the Brazilian Portuguese text into natural English, as one short "
                "sentence. Answer with the translation only: no quotes, no notes."
            ),
        },
        {"role": "user", "content": reply},
    ]


def translation_hint(translation: str) -> str:
    """The spoken hint: the LLM's translation, one sentence, introduced in Portuguese."""
    text = " ".join(translation.split()).strip(" \"'“”«»")
    first = re.match(r"(.+?[.!?])(?:\s|$)", text)
    sentence = first.group(1) if first else text
    return f"Em inglês: {sentence}" if sentence else NOTHING_TO_TRANSLATE
