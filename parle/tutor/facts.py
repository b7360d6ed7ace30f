"""What a learner tells about themselves, and the words they use, read from their
utterances by rules (no model: this runs off the hot path, after the turn, in the store's
writer).

Facts are found in common Portuguese phrasings: "meu nome é X", "me chamo X", "eu sou de X",
"moro em X", "eu trabalho como X", "sou professor", "eu gosto de X", "adoro X". Words are
lowercase word forms: no Portuguese lemmatizer is available offline, so "falo" and "falei"
count as two words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Kinds of fact; a learner has one value of each, except interests (several).
SINGLE_KINDS = ("name", "country", "city", "job")
MULTI_KINDS = ("interest",)

_LETTERS = "A-Za-zÀ-ÖØ-öø-ÿ"
_WORD = rf"[{_LETTERS}][{_LETTERS}'-]*"
# A phrase that ends at punctuation, at "e"/"mas"/"porque"... or at the end.
_PHRASE = rf"({_WORD}(?:\s+{_WORD}){{0,4}}?)"
_END = r"(?=\s*(?:[,.;!?]|$|\s(?:e|mas|porque|que|então|aqui|agora|há|faz|desde)\b))"

_NAME = re.compile(
    rf"\b(?:meu nome é|me chamo|pode me chamar de)\s+({_WORD}(?:\s+{_WORD})?){_END}",
    re.IGNORECASE,
)
_FROM = re.compile(
    rf"\b(?:eu\s+)?(?:sou|venho)\s+(?:d[eoa]s?)\s+{_PHRASE}{_END}",
    re.IGNORECASE,
)
_LIVES = re.compile(rf"\b(?:eu\s+)?moro\s+(?:em|no|na|nos|nas)\s+{_PHRASE}{_END}", re.IGNORECASE)
_JOB = re.compile(
    rf"\b(?:eu\s+)?(?:trabalho\s+como|minha\s+profissão\s+é|sou\s+formad[oa]\s+em)\s+"
    rf"(?:um\s+|uma\s+)?{_PHRASE}{_END}",
    re.IGNORECASE,
)
# "sou professora", "sou engenheiro": only a known job word (too many "sou X" are not jobs).
_JOBS = (  # noqa: SIM905
    "professor professora engenheiro engenheira médico médica enfermeiro enfermeira "
    "advogado advogada estudante programador programadora designer jornalista arquiteto "
    "arquiteta cozinheiro cozinheira garçom garçonete vendedor vendedora motorista "
    "dentista músico música artista escritor escritora contador contadora gerente "
    "secretária secretário psicólogo psicóloga policial bombeiro veterinário veterinária "
    "farmacêutico farmacêutica pesquisador pesquisadora cientista fotógrafo fotógrafa"
).split()
_SOU_JOB = re.compile(
    rf"\b(?:eu\s+)?sou\s+(?:um\s+|uma\s+)?({'|'.join(_JOBS)})\b(?:\s+de\s+({_WORD}))?",
    re.IGNORECASE,
)
_LIKES = re.compile(
    rf"\b(não\s+)?(?:eu\s+)?(?:gosto\s+(?:muito\s+)?(?:de|do|da|dos|das)|adoro|amo)\s+"
    rf"((?:{_WORD})(?:\s+{_WORD}){{0,3}}?){_END}",
    re.IGNORECASE,
)
# Interests "gosto de X e de Y": the rest after "e (de|do|da)".
_AND_ALSO = re.compile(rf"^\s*e\s+(?:de|do|da|dos|das)\s+((?:{_WORD})(?:\s+{_WORD}){{0,3}}?){_END}")

# Words too common to be "learning" (articles, pronouns, prepositions, common verbs).
STOPWORDS = frozenset(
    """
    a à ao aos as às com como da das de do dos e é ela elas ele eles em então era eu foi
    isso isto já lá mais mas me meu minha muito na nas não no nos o os ou para pela pelo
    por porque qual quando que se sem ser seu sim sou sua são também te tem tenho um uma
    umas uns você vocês está estou estão vou vai ter ir tá né aqui ali hoje bem oi olá
    """.split()  # noqa: SIM905
)

_TOKEN = re.compile(rf"[{_LETTERS}]+(?:-[{_LETTERS}]+)*")


@dataclass(frozen=True)
class Fact:
    kind: str  # one of SINGLE_KINDS or MULTI_KINDS
    value: str


def _clean(value: str, *, title: bool = False) -> str:
    value = " ".join(value.split()).strip(" '-")
    if title:
        value = " ".join(part[:1].upper() + part[1:] for part in value.split())
    return value[:200]


def extract_facts(text: str) -> list[Fact]:
    """The facts stated in one utterance, in order; an empty list when none."""
    found: list[Fact] = []
    for match in _NAME.finditer(text):
        found.append(Fact("name", _clean(match.group(1), title=True)))
    for match in _FROM.finditer(text):
        origin = _clean(match.group(1), title=True)
        if origin.lower() not in ("novo", "nova", "manhã", "tarde", "noite", "lá", "aqui"):
            found.append(Fact("country", origin))
    for match in _LIVES.finditer(text):
        found.append(Fact("city", _clean(match.group(1), title=True)))
    for match in _JOB.finditer(text):
        found.append(Fact("job", _clean(match.group(1).lower())))
    for match in _SOU_JOB.finditer(text):
        job = match.group(1).lower()
        if match.group(2):
            job = f"{job} de {match.group(2).lower()}"
        found.append(Fact("job", job))
    for match in _LIKES.finditer(text):
        if match.group(1):  # "não gosto de…": not an interest
            continue
        found.append(Fact("interest", _clean(match.group(2).lower())))
        rest = text[match.end() :]
        while (more := _AND_ALSO.match(rest)) is not None:
            found.append(Fact("interest", _clean(more.group(1).lower())))
            rest = rest[more.end() :]
    return [fact for fact in found if fact.value]


def words_of(text: str) -> dict[str, int]:
    """Lowercase word forms of an utterance and how often each occurs (at most 64 chars)."""
    counts: dict[str, int] = {}
    for token in _TOKEN.findall(text.lower()):
        if len(token) <= 64:
            counts[token] = counts.get(token, 0) + 1
    return counts


def is_learning_word(word: str) -> bool:
    """Whether a word is worth listing among those a learner is learning."""
    return len(word) >= 4 and word not in STOPWORDS
