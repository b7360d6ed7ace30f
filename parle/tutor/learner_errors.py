"""PARLE's own learner-error rules: the errors that matter most at A1-B1 and that a general
grammar checker (LanguageTool, written for native writers) misses or words for natives.

Each rule is a small pattern over a closed vocabulary below: a pronoun and a verb form that
do not agree (`eu mora`), an adjective that does not agree with its noun across `ser`/`estar`
(`a casa é bonito`), a determiner of the wrong gender (`uma carro`), `mais melhor`, `ir no`
where the tutor teaches `ir ao` (B1 and up), `ser`/`estar` with a state, a place or a
profession, a past or future marker with the wrong tense, `gostar` without `de`, a country
that takes its article (`em Brasil`), and more below. A rule fires only on words whose form
it knows (`parle.tutor.portuguese`): a word outside those tables is never an error
(precision first; the labelled sets in tests/data/learner_errors measure both:
bench/bench_corrections.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from parle.tutor.corrections import Correction, Finding
from parle.tutor.levels import level_index
from parle.tutor.portuguese import (
    ADJECTIVES,
    CONJUGATIONS,
    DETERMINER,
    DETERMINER_WORDS,
    DETERMINERS,
    FORMS,
    NOT_ONLY_VERBS,
    NOUNS,
    PRONOUN_PERSONS,
    SLOTS,
    WORD,
    Form,
    Gender,
    Number,
    adjective_forms,
    form_of,
    inflect,
    past_subjunctive,
    plural,
    present_subjunctive,
    words,
)

# ---------------------------------------------------------------------------------------
# Verbs

# Words between a subject pronoun and its verb.
_ADVERB = r"(?:(?:não|também|sempre|nunca|já|ainda|só|quase|realmente)\s+)"
# Words before a pronoun that make it not the verb's subject (`com ele`, `para eles`).
_NOT_SUBJECT_BEFORE = frozenset(words("com para de sem por entre a ou que nem"))

_PRONOUN_VERB = re.compile(
    rf"\b(?P<pronoun>eu|tu|você|ele|ela|nós|vocês|eles|elas|a gente)\s+{_ADVERB}*"
    rf"(?P<verb>{WORD})\b",
    re.IGNORECASE,
)
_WORD_BEFORE = re.compile(rf"({WORD})\s*$")

# Words that place a clause in the past or the future.
_PAST = re.compile(
    r"\b(?:ontem|anteontem|(?:semana|ano|mês|sábado|domingo|fim de semana) passad[oa]|"
    r"(?:há|faz) \w+ (?:dias|anos|meses|semanas)|no ano passado)\b",
    re.IGNORECASE,
)
_FUTURE = re.compile(
    r"\b(?:amanhã|depois de amanhã|(?:semana|ano|mês) que vem|(?:na|no) próxim[oa] \w+)\b",
    re.IGNORECASE,
)


def _agreement_and_tense(text: str, level: str) -> Iterator[Finding]:
    for match in _PRONOUN_VERB.finditer(text):
        pronoun, verb = " ".join(match["pronoun"].lower().split()), match["verb"].lower()
        before = _WORD_BEFORE.search(text, 0, match.start())
        word_before = before.group(1).lower() if before else ""
        if word_before in _NOT_SUBJECT_BEFORE:
            continue
        forms = FORMS.get(verb)
        if not forms:
            continue
        persons = PRONOUN_PERSONS[pronoun]
        if before and word_before == "e" and not _has_verb(_clause_before(text, before.start(1))):
            # "minha irmã e eu moramos": a compound subject is plural ("ela mora sozinha e
            # ela trabalha" is two clauses: a verb came before the "e")
            persons = (*persons, "1p" if pronoun in ("eu", "nós") else "3p")
        span = (match.start(), match.end())
        original = text[span[0] : span[1]]
        agreeing = [f for f in forms if f.person in persons]
        clause = _clause_around(text, match.start())
        if not agreeing:
            if verb in NOT_ONLY_VERBS:
                continue
            form = forms[0]
            tense = form.tense
            if form.tense == "pres" and _PAST.search(clause):
                tense = "pret"  # "ontem eu vai": the past, in the learner's person
            right = form_of(form.lemma, tense, persons[0])
            yield _finding(
                original,
                _replace_last(original, verb, right),
                f'Com "{pronoun}", o verbo fica "{right}".',
                "agreement",
                "pronoun_verb_agreement",
                span,
            )
            continue
        form = agreeing[0]
        eating = pronoun == "eu" and verb == "como"  # after "eu", "como" is eating
        past_too = any(f.tense == "pret" for f in agreeing)  # "nós visitamos": both
        if (
            form.tense == "pres"
            and not past_too
            and _PAST.search(clause)
            and (verb not in NOT_ONLY_VERBS or eating)
        ):
            right = form_of(form.lemma, "pret", form.person)
            yield _finding(
                original,
                _replace_last(original, verb, right),
                f'Para o passado, usamos o pretérito: "{right}".',
                "tense",
                "past_marker_present",
                span,
            )
        elif form.tense == "pret" and _FUTURE.search(clause):
            # "amanhã eu fui" -> "vou"; "amanhã eu comprei" -> "vou comprar"
            going = form_of("ir", "pres", form.person)
            lemma = "ir" if any(f.lemma == "ir" for f in agreeing) else form.lemma
            right = going if lemma == "ir" else f"{going} {lemma}"
            yield _finding(
                original,
                _replace_last(original, verb, right),
                f'Para o futuro, usamos "ir" no presente: "{right}".',
                "tense",
                "future_marker_past",
                span,
            )


def _has_verb(words: str) -> bool:
    return any(w.lower() in FORMS for w in re.findall(WORD, words))


_CLAUSE_BREAK = re.compile(
    r"[,;.!?]|\b(?:mas|porque|quando|e hoje|e agora|e amanhã|e ontem|e depois)\b", re.IGNORECASE
)


def _clause_around(text: str, at: int) -> str:
    """The clause `at` is in: from the break before it to the break after it (a time word
    may follow the verb: "eu vai na praia ontem")."""
    start, end = 0, len(text)
    for match in _CLAUSE_BREAK.finditer(text):
        if match.end() <= at:
            start = match.end()
        elif match.start() >= at:
            end = match.start()
            break
    return text[start:end]


def _clause_before(text: str, at: int) -> str:
    """The words of the clause that ends at `at` (back to a comma, `mas`, `e`, `porque`)."""
    start = max(text.rfind(mark, 0, at) for mark in (",", ";", ".", "!", "?"))
    clause = text[start + 1 : at]
    parts = re.split(r"\b(?:mas|porque|quando|e hoje|e agora)\b", clause, flags=re.IGNORECASE)
    return parts[-1]


# ---------------------------------------------------------------------------------------
# Nouns, determiners and adjectives

_COPULA = "é|está|são|estão|era|estava|eram|estavam|foi|foram|ficou|ficaram|parece|parecem"
_INTENSIFIER = r"(?:(?:muito|bem|bastante|tão|super|meio|um pouco|sempre|não)\s+)"
# What may stand between a subject's noun and its verb: a place word, or a "de" phrase of one
# or two words ("os sapatos dessa loja são...", "a comida daqui é...").
_NOUN_COMPLEMENT = (
    r"(?:(?:daqui|dali|de lá|lá|aqui|hoje|agora)\s+|"
    rf"(?:de|do|da|dos|das|desse|dessa|deste|desta|dele|dela)\s+(?:{WORD}\s+)?(?:{WORD}\s+)?|"
    rf"(?P<noun_adj>{WORD})\s+)?"
)
_NOUN_COPULA_ADJECTIVE = re.compile(
    rf"\b(?P<det>{DETERMINER_WORDS})\s+(?:(?P<det2>{DETERMINER_WORDS})\s+)?(?P<noun>{WORD})\s+"
    rf"{_NOUN_COMPLEMENT}"
    rf"(?P<copula>{_COPULA})\s+{_INTENSIFIER}*(?P<adj>{WORD})\b",
    re.IGNORECASE,
)
_PERSON_COPULA_ADJECTIVE = re.compile(
    rf"\b(?P<pronoun>ele|ela|eles|elas)\s+(?P<copula>{_COPULA})\s+{_INTENSIFIER}*(?P<adj>{WORD})\b",
    re.IGNORECASE,
)
_PRONOUN_GENDER = {"ele": ("m", "s"), "ela": ("f", "s"), "eles": ("m", "p"), "elas": ("f", "p")}


def _subject(match: re.Match[str]) -> tuple[Gender, Number, str] | None:
    """The gender and number of `det (det2) noun`, and the noun; None when unknown."""
    det, det2, noun = (match[k].lower() if match[k] else None for k in ("det", "det2", "noun"))
    assert noun is not None and det is not None
    first = DETERMINER.get(det)
    if first is None:
        return None
    if det2 is not None:
        second = DETERMINER.get(det2)
        if second is None or second[1:] != first[1:]:
            return None  # "o carro novo é..." reads `novo` as the noun: not this rule's
    if match["noun_adj"] and match["noun_adj"].lower() not in ADJECTIVES:
        return None  # "a casa amarela é": only an adjective may follow the noun here
    known = NOUNS.get(noun)
    if known is not None and known != first[1:]:
        return None  # the determiner disagrees with its noun: `_determiner_noun`'s
    if known is None and (noun in DETERMINER or noun in ADJECTIVES or noun in FORMS):
        return None
    return (*first[1:], noun)


def _adjective_agreement(text: str, level: str) -> Iterator[Finding]:
    for match in _NOUN_COPULA_ADJECTIVE.finditer(text):
        subject = _subject(match)
        if subject is None:
            continue
        gender, number, noun = subject
        yield from _agree(text, match, gender, number, noun)
    for match in _PERSON_COPULA_ADJECTIVE.finditer(text):
        before = _WORD_BEFORE.search(text, 0, match.start())
        if before and before.group(1).lower() in _NOT_SUBJECT_BEFORE:
            continue
        gender, number = _PRONOUN_GENDER[match["pronoun"].lower()]
        yield from _agree(text, match, gender, number, match["pronoun"].lower())


def _agree(
    text: str, match: re.Match[str], gender: Gender, number: Number, noun: str
) -> Iterator[Finding]:
    adj = match["adj"].lower()
    readings = ADJECTIVES.get(adj)
    if not readings:
        return
    if any((g is None or g == gender) and n == number for _, g, n in readings):
        return
    right = inflect(readings[0][0], gender, number)
    start = match.start("copula")
    original = text[start : match.end()]
    what = ("masculino" if gender == "m" else "feminino") + (
        " singular" if number == "s" else " plural"
    )
    yield _finding(
        original,
        _replace_last(original, adj, right),
        f'"{noun}" é {what}: o adjetivo concorda com ele, "{right}".',
        "agreement",
        "adjective_agreement",
        (start, match.end()),
    )


# A lookahead: every pair of words, overlapping ("de uma carro" holds "uma carro").
_DETERMINER_NOUN = re.compile(rf"\b(?P<det>{WORD})(?=\s+(?P<noun>{WORD})\b)", re.IGNORECASE)
# Quantifiers are adverbs too ("muito tarde", "muito doce"): not before a word that may be
# an adverb or an adjective.
_QUANTIFIER_FAMILIES = frozenset(
    family for family, words in enumerate(DETERMINERS) if words[0] in ("muito", "pouco")
)
_ADVERBIAL_NOUNS = frozenset(words("tarde cedo bem mal"))
# `a`/`as` are prepositions too (`a pé`, `a cavalo`): read as a determiner only where a
# subject starts (the start of a clause, after "e", "mas", "que").
_AMBIGUOUS_DETERMINERS = frozenset({"a", "as"})
_SUBJECT_START = re.compile(r"(?:^|[,;.!?:]|\b(?:e|mas|que|porque|quando|se))\s*$", re.IGNORECASE)


_QUANTIFIERS = words(
    "dois duas três quatro cinco seis sete oito nove dez muitos muitas poucos poucas alguns "
    "algumas outros outras vários várias"
)
# A preposition and an article in one word ("numa cidade pequena").
_CONTRACTED_ARTICLES = words(
    "no na nos nas num numa nuns numas do da dos das dum duma ao aos à às pelo pela pelos pelas"
)
# A lookahead: every determiner starts one ("as férias numa cidade pequeno" holds two).
_NOUN_ADJECTIVE = re.compile(
    rf"\b(?P<det>{DETERMINER_WORDS}|{'|'.join(_QUANTIFIERS + _CONTRACTED_ARTICLES)})"
    rf"(?=\s+(?P<noun>{WORD})\s+(?P<adj>{WORD})\b)",
    re.IGNORECASE,
)


def _noun_adjective(text: str, level: str) -> Iterator[Finding]:
    """An adjective right after its noun, in the wrong gender or number ("camisas branco"); the
    noun after a determiner or a number, so that "em casa cansado" (an adverbial "casa") is
    not read as one noun phrase."""
    for match in _NOUN_ADJECTIVE.finditer(text):
        noun, adj = match["noun"].lower(), match["adj"].lower()
        known, readings = NOUNS.get(noun), ADJECTIVES.get(adj)
        if known is None or not readings or adj in NOUNS:
            continue
        gender, number = known
        if any((g is None or g == gender) and n == number for _, g, n in readings):
            continue
        right = inflect(readings[0][0], gender, number)
        start, end = match.start("noun"), match.end("adj")
        original = text[start:end]
        yield _finding(
            original,
            _replace_last(original, adj, right),
            f'O adjetivo concorda com "{noun}": "{noun} {right}".',
            "agreement",
            "noun_adjective_agreement",
            (start, end),
        )


_NUMERALS = words(
    "dois duas três quatro cinco seis sete oito nove dez onze doze quinze vinte trinta "
    "quarenta cinquenta cem mil"
)
_NUMERAL_NOUN = re.compile(
    rf"\b(?P<number>\d+|{'|'.join(_NUMERALS)})\s+(?P<noun>{WORD})\b", re.IGNORECASE
)


def _numeral_noun(text: str, level: str) -> Iterator[Finding]:
    """A number above one with a singular noun ("trinta ano")."""
    for match in _NUMERAL_NOUN.finditer(text):
        number, noun = match["number"], match["noun"].lower()
        if number.isdigit() and int(number) < 2:
            continue
        known = NOUNS.get(noun)
        if known is None or known[1] != "s":
            continue
        right = next(w for w, n in NOUNS.items() if n == (known[0], "p") and plural(noun) == w)
        yield _finding(
            match.group(0),
            _replace_last(match.group(0), noun, right),
            f'Mais de um: "{right}".',
            "agreement",
            "numeral_noun_agreement",
            match.span(),
        )


def _determiner_noun(text: str, level: str) -> Iterator[Finding]:
    for match in _DETERMINER_NOUN.finditer(text):
        det, noun = match["det"].lower(), match["noun"].lower()
        if det not in DETERMINER:
            continue
        if det in _AMBIGUOUS_DETERMINERS and not _SUBJECT_START.search(text, 0, match.start()):
            continue
        known = NOUNS.get(noun)
        family, gender, number = DETERMINER[det]
        if known is None or known == (gender, number):
            continue
        if family in _QUANTIFIER_FAMILIES and (noun in _ADVERBIAL_NOUNS or noun in ADJECTIVES):
            continue
        right = DETERMINERS[family][SLOTS.index(known)]
        span = (match.start(), match.end("noun"))
        original = text[span[0] : span[1]]
        label = "feminina" if known[0] == "f" else "masculina"
        yield _finding(
            original,
            _replace_first(original, match["det"], right),
            f'"{noun}" é uma palavra {label}: "{right} {noun}".',
            "agreement",
            "determiner_noun_agreement",
            span,
        )


# A noun subject at the start of a clause, then its verb ("os meninos corre"): the
# determiner says the number. At a clause's start only, so that the noun is its subject.
_NOUN_VERB = re.compile(
    rf"(?:^|[,;.!?]\s*|\b(?:e|mas|que|porque|quando|se)\s+)"
    rf"(?P<det>{DETERMINER_WORDS})\s+(?:(?P<det2>{DETERMINER_WORDS})\s+)?(?P<noun>{WORD})\s+"
    rf"{_ADVERB}*(?P<verb>{WORD})\b",
    re.IGNORECASE,
)


def _noun_verb_agreement(text: str, level: str) -> Iterator[Finding]:
    for match in _NOUN_VERB.finditer(text):
        det, noun, verb = (match[k].lower() for k in ("det", "noun", "verb"))
        known = NOUNS.get(noun)
        forms = FORMS.get(verb)
        if known is None or not forms or verb in NOT_ONLY_VERBS or verb in NOUNS:
            continue
        if known[1] != DETERMINER[det][2]:
            continue  # determiner and noun disagree: `_determiner_noun`'s
        person = "3s" if known[1] == "s" else "3p"
        if any(f.person == person for f in forms):
            continue
        right = form_of(forms[0].lemma, forms[0].tense, person)
        start = match.start("det")
        original = text[start : match.end()]
        number = "singular" if person == "3s" else "plural"
        yield _finding(
            original,
            _replace_last(original, verb, right),
            f'"{noun}" está no {number}: o verbo concorda, "{right}".',
            "agreement",
            "noun_verb_agreement",
            (start, match.end()),
        )


# ---------------------------------------------------------------------------------------
# Fixed patterns

# "mais bom" is "melhor", "mais grande" is "maior" ("mais pequeno" is European Portuguese).
_SYNTHETIC_COMPARATIVE = {
    "bom": "melhor", "boa": "melhor", "bons": "melhores", "boas": "melhores",
    "grande": "maior", "grandes": "maiores",
}  # fmt: skip
# Comparing, not counting: "quero mais bons livros" (more good books) is right.
_MAIS_ADJECTIVE = re.compile(
    rf"\bmais\s+(?P<word>{'|'.join(_SYNTHETIC_COMPARATIVE)})"
    r"(?=\s*(?:[,.!?;]|$|do que\b|que\b|de\b|para\b|e\b|agora\b|hoje\b))",
    re.IGNORECASE,
)
_MAIS_COMPARATIVE = re.compile(
    r"\bmais\s+(?P<word>melhor|melhores|pior|piores|maior|maiores|menor|menores)\b", re.IGNORECASE
)

_IR_FORMS = (
    "vou|vai|vamos|vão|fui|foi|fomos|foram|ir|ia|iam|íamos|indo|iria|iríamos|iriam|irei|irá|"
    "iremos|irão"
)
_IR_EM = re.compile(rf"\b(?P<ir>{_IR_FORMS})\s+(?P<prep>no|na|nos|nas)\b", re.IGNORECASE)
_TO_A = {"no": "ao", "na": "à", "nos": "aos", "nas": "às"}
# Colloquial Brazilian speech says "ir no"; the tutor teaches "ao" from B1 (before, it would
# crowd out the errors that matter more: agreement, ser/estar, tenses).
IR_EM_FROM = "B1"

_STATES = words(
    """
cansado ocupado doente preocupado nervoso atrasado sentado resfriado cheio molhado pronto
desligado quebrado lotado
"""
)
_ESTAR_STATES = frozenset(form for state in _STATES for form in adjective_forms(state))
_SER_FORMS = {
    "sou": "estou",
    "é": "está",
    "somos": "estamos",
    "são": "estão",
    "era": "estava",
    "eram": "estavam",
    "fosse": "estivesse",
    "fossem": "estivessem",
    "for": "estiver",
    "forem": "estiverem",
}
# `sou`/`somos` say their subject; the others need one before them: a pronoun, or a noun
# with its determiner ("o celular dela era desligado").
_SER_STATE = re.compile(
    rf"(?:\b(?:eu|você|ele|ela|nós|vocês|eles|elas|(?:{DETERMINER_WORDS})\s+{WORD}"
    rf"(?:\s+(?:dele|dela|deles|delas))?)\s+(?:não\s+)?"
    rf"(?P<ser>sou|é|somos|são|era|eram|fosse|fossem|for|forem)|"
    rf"\b(?P<ser1>sou|somos))\s+{_INTENSIFIER}*(?P<word>{WORD})\b",
    re.IGNORECASE,
)
# People (not events: "a festa é na casa da Ana" is right) said to "be" in a place.
_PEOPLE = words(
    """
pai mãe irmão irmã filho filha amigo amiga marido esposa namorado namorada chefe colega
professor professora avô avó tio tia primo prima vizinho vizinha médico médica
"""
)
_SER_PLACE = re.compile(
    rf"\b(?:(?:eu|você|ele|ela|nós|vocês|eles|elas)|(?:{DETERMINER_WORDS})\s+"
    rf"(?:(?:{DETERMINER_WORDS})\s+)?(?:{'|'.join(_PEOPLE)}))\s+(?P<ser>sou|é|somos|são)\s+"
    r"(?P<prep>no|na|nos|nas|em)\b",
    re.IGNORECASE,
)
_NUMBER_WORDS = (
    r"\d+|dez|onze|doze|treze|catorze|quatorze|quinze|dezesseis|dezessete|dezoito|dezenove|"
    r"vinte|trinta|quarenta|cinquenta|sessenta|setenta|oitenta|noventa|cem"
)
# "sou trinta anos" (age is "ter"); not "são vinte anos" (a time span) nor "é dez anos mais
# velho" (a difference).
_SER_AGE = re.compile(
    rf"(?:\b(?:eu|você|ele|ela|nós|vocês|eles|elas|(?:{DETERMINER_WORDS})\s+"
    rf"(?:(?:{DETERMINER_WORDS})\s+)?(?:{'|'.join(_PEOPLE)}))\s+"
    rf"(?P<ser>sou|é|somos|são|era|éramos|eram)|\b(?P<ser1>sou|somos))\s+"
    rf"(?P<age>(?:{_NUMBER_WORDS})(?:\s+e\s+\w+)?)\s+anos\b"
    r"(?!\s+(?:mais|menos|de|atrás|a mais))",
    re.IGNORECASE,
)
_SER_TO_TER = {
    "sou": "tenho", "é": "tem", "somos": "temos", "são": "têm",
    "era": "tinha", "éramos": "tínhamos", "eram": "tinham",
}  # fmt: skip
_ROLES = frozenset(
    words(
        """
professor professora estudante médico médica engenheiro engenheira enfermeiro enfermeira
advogado advogada brasileiro brasileira americano americana português portuguesa inglês
inglesa francês francesa alemão alemã italiano italiana japonês japonesa
"""
    )
)
_ESTAR_FORMS = {"estou": "sou", "está": "é", "estamos": "somos", "estão": "são"}
_ESTAR_ROLE = re.compile(
    rf"\b(?P<pronoun>eu|você|ele|ela|nós|vocês|eles|elas)\s+(?P<estar>estou|está|estamos|estão)"
    rf"\s+(?:um\s+|uma\s+)?(?P<word>{WORD})\b",
    re.IGNORECASE,
)

_GOSTAR = "gosto|gosta|gostamos|gostam|gostei|gostou|gostaram|gostava|gostavam"
_GOSTAR_NO_DE = re.compile(
    rf"\b(?P<subject>eu|você|ele|ela|nós|vocês|eles|elas|não|também)\s+(?P<gostar>{_GOSTAR})\s+"
    rf"(?P<next>{WORD})\b",
    re.IGNORECASE,
)
_DE_BEFORE = frozenset(words("um uma meu minha meus minhas"))
_CONTRACT_DE = {"o": "do", "a": "da", "os": "dos", "as": "das"}

_PRECISAR = "preciso|precisa|precisamos|precisam|precisei|precisou|precisava"
_PRECISAR_NO_DE = re.compile(
    rf"\b(?P<verb>{_PRECISAR})\s+(?P<next>{DETERMINER_WORDS})\b", re.IGNORECASE
)
_ESTAR_FROM = re.compile(
    r"\b(?P<estar>estou|está|estamos|estão)\s+(?P<prep>de|do|da|dos)\s+(?P<place>[A-Z]\w+)"
)
_FEELINGS = "fome|sede|frio|calor|sono|medo|pressa|dor de cabeça"
_SER_WITH_FEELING = re.compile(
    rf"\b(?P<verb>sou|é|somos|são|estou|está|estamos|estão)\s+(?P<com>com\s+)?(?P<what>{_FEELINGS})\b",
    re.IGNORECASE,
)
_TO_ESTAR = {"sou": "estou", "é": "está", "somos": "estamos", "são": "estão"}
# A preposition and an article the language contracts ("em o" -> "no").
_CONTRACTIONS = {
    ("em", "o"): "no", ("em", "a"): "na", ("em", "os"): "nos", ("em", "as"): "nas",
    ("de", "o"): "do", ("de", "a"): "da", ("de", "os"): "dos", ("de", "as"): "das",
    ("por", "o"): "pelo", ("por", "a"): "pela", ("por", "os"): "pelos", ("por", "as"): "pelas",
}  # fmt: skip
_PREPOSITION_ARTICLE = re.compile(
    rf"\b(?P<prep>em|de|por)\s+(?P<article>o|a|os|as)\s+(?P<next>{WORD})(?:\s+(?P<after>{WORD}))?",
    re.IGNORECASE,
)
# A verb or adjective and the preposition it takes, by what learners put instead
# ("insisto de pagar" -> "insisto em pagar"; "apaixonada de" -> "apaixonada por").
_GOVERNED = (
    (r"insist\w+", {"de": "em", "para": "em"}),
    (r"apaixonad[oa]s?", {"de": "por", "do": "pelo", "da": "pela", "dos": "pelos", "das": "pelas"}),
    (r"depend\w+", {"em": "de", "no": "do", "na": "da", "nos": "dos", "nas": "das"}),
    (r"sonh\w+", {"de": "com", "do": "com o", "da": "com a"}),
)
_GOVERNED_RE = [
    (re.compile(rf"\b(?P<word>{word})\s+(?P<prep>{'|'.join(wrong)})\b", re.IGNORECASE), wrong)
    for word, wrong in _GOVERNED
]
_COUNTRIES = (
    "Brasil|Japão|Canadá|México|Chile|Peru|Uruguai|Paraguai|Egito|Estados Unidos|Reino Unido"
)
_COUNTRY_NO_ARTICLE = re.compile(
    rf"\b(?P<prep>em|de|visitar|conhecer|visito|visitei|conheço|conheci|visitamos|conhecemos)"
    rf"\s+(?P<country>{_COUNTRIES})\b"
)
_COUNTRY_PLURAL = frozenset({"Estados Unidos"})


# A habitual past: childhood or "antigamente", and how often. Both, because "quando eu era
# criança, eu fui ao Brasil" (once) is right.
_HABITUAL_CONTEXT = re.compile(
    r"\b(?:antigamente|quando (?:eu|ele|ela|nós|eles|elas|a gente) (?:era|éramos|eram) "
    r"(?:criança|crianças|pequeno|pequena|pequenos|jovem|jovens|adolescente|adolescentes))\b",
    re.IGNORECASE,
)
_HABITUAL_FREQUENCY = re.compile(
    r"\b(?:todos os dias|todo dia|toda semana|todo fim de semana|todos os fins de semana|"
    r"todo ano|todos os anos|sempre|muitas vezes|toda tarde|todas as tardes)\b",
    re.IGNORECASE,
)
_PRONOUN_PRETERITE = re.compile(
    rf"\b(?P<pronoun>eu|você|ele|ela|nós|eles|elas)\s+{_ADVERB}*(?P<verb>{WORD})\b",
    re.IGNORECASE,
)


_WHILE_PRETERITE = re.compile(
    rf"\benquanto\s+(?P<pronoun>eu|você|ele|ela|nós|eles|elas)\s+{_ADVERB}*(?P<verb>{WORD})\b",
    re.IGNORECASE,
)


def _imperfect_of(verb: str, pronoun: str, *, unless: Callable[[Form], bool]) -> str | None:
    """The imperfect that `verb`, a preterite in `pronoun`'s person, should have been; None
    when it is not that, or when one of its readings is `unless`."""
    persons = PRONOUN_PERSONS[pronoun.lower()]
    forms = [f for f in FORMS.get(verb, []) if f.tense == "pret" and f.person in persons]
    if not forms or any(unless(f) for f in FORMS[verb]):
        return None
    return form_of(forms[0].lemma, "imp", forms[0].person)


def _ongoing_past(text: str, level: str) -> Iterator[Finding]:
    """ "Enquanto eu tomei banho": what was going on is the imperfect."""
    for match in _WHILE_PRETERITE.finditer(text):
        verb = match["verb"].lower()
        # "nós tomamos" is the present too: only an unambiguous preterite.
        right = _imperfect_of(verb, match["pronoun"], unless=lambda f: f.tense != "pret")
        if right is None:
            continue
        start = match.start("pronoun")
        original = text[start : match.end()]
        yield _finding(
            original,
            _replace_last(original, verb, right),
            f'O que estava acontecendo vai no imperfeito: "{right}".',
            "tense",
            "ongoing_imperfect",
            (start, match.end()),
        )


def _habitual_past(text: str, level: str) -> Iterator[Finding]:
    if not (_HABITUAL_CONTEXT.search(text) and _HABITUAL_FREQUENCY.search(text)):
        return
    for match in _PRONOUN_PRETERITE.finditer(text):
        verb = match["verb"].lower()
        right = _imperfect_of(verb, match["pronoun"], unless=lambda f: f.tense == "imp")
        if right is None:
            continue
        original = match.group(0)
        yield _finding(
            original,
            _replace_last(original, verb, right),
            f'Para o que acontecia sempre no passado, usamos o imperfeito: "{right}".',
            "tense",
            "habitual_imperfect",
            match.span(),
        )


# False friends before "que": "realizar" is to carry out (English "realize" is "perceber"),
# "pretender" is to intend (English "pretend" is "fingir").
_FALSE_FRIENDS = {
    "realizei": "percebi", "realizou": "percebeu", "realizamos": "percebemos",
    "realizaram": "perceberam", "realizo": "percebo", "realiza": "percebe",
    "pretendi": "fingi", "pretendeu": "fingiu", "pretenderam": "fingiram",
}  # fmt: skip
_FALSE_FRIEND_MEANING = {
    "perceb": ('"Realizar" é fazer', '"to realize"'),
    "fing": ('"Pretender" é ter a intenção', '"to pretend"'),
}
_FALSE_FRIEND_THAT = re.compile(rf"\b(?P<verb>{'|'.join(_FALSE_FRIENDS)})\s+que\b", re.IGNORECASE)

_SUBJECT = r"(?:eu|você|ele|ela|nós|vocês|eles|elas|a gente)"
_SUBJUNCTIVE_TRIGGER = re.compile(
    r"\b(?:(?:duvido|espero|quero|prefiro|peço|tomara|embora|para|antes|caso|a menos|sem|até|"
    r"mesmo|"
    r"é (?:importante|necessário|possível|provável|bom|melhor|preciso))\s+que|talvez)\s+"
    rf"(?P<subject>{_SUBJECT}\s+)?{_ADVERB}*(?P<verb>{WORD})\b",
    re.IGNORECASE,
)
_SUBJUNCTIVE_FROM = "B2"


# "Se eu tenho dinheiro, compraria...": a hypothesis with a conditional is the imperfect
# subjunctive.
_CONDITIONAL = re.compile(r"\b\w+(?:ria|ríamos|riam)\b", re.IGNORECASE)
_IF_PRESENT = re.compile(
    rf"\bse\s+(?P<subject>{_SUBJECT}\s+)?{_ADVERB}*(?P<verb>{WORD})\b", re.IGNORECASE
)


def _mood(text: str, level: str) -> Iterator[Finding]:
    if level_index(level) < level_index(_SUBJUNCTIVE_FROM):
        return
    hypotheses = _IF_PRESENT.finditer(text) if _CONDITIONAL.search(text) else iter(())
    for match in [*_SUBJUNCTIVE_TRIGGER.finditer(text), *hypotheses]:
        verb = match["verb"].lower()
        forms = [
            f
            for f in FORMS.get(verb, [])
            if f.tense in ("pres", "imp") and f.person not in ("2s", "1s")
        ] or [f for f in FORMS.get(verb, []) if f.person == "1s" and f.tense == "pres"]
        if not forms or verb in NOT_ONLY_VERBS:
            continue
        form = forms[0]
        hypothesis = match.re is _IF_PRESENT
        if form.tense == "imp" or hypothesis:
            right = past_subjunctive(form.lemma, form.person)
        else:
            right = present_subjunctive(form.lemma, form.person)
        if right == verb:
            continue
        start = match.start("subject") if match["subject"] else match.start("verb")
        original = text[start : match.end()]
        yield _finding(
            original,
            _replace_last(original, verb, right),
            f'Aqui o verbo vai no subjuntivo: "{right}".',
            "tense",
            "subjunctive_after_trigger",
            (start, match.end()),
        )


def _false_friends(text: str, level: str) -> Iterator[Finding]:
    """False friends a learner brings from English."""
    for match in _FALSE_FRIEND_THAT.finditer(text):
        verb = match["verb"]
        right = _FALSE_FRIENDS[verb.lower()]
        means, english = next(v for k, v in _FALSE_FRIEND_MEANING.items() if right.startswith(k))
        yield _finding(
            match.group(0),
            _replace_first(match.group(0), verb, right),
            f'{means}; para {english} dizemos "{right}".',
            "vocabulary",
            "false_friend",
            match.span(),
        )


def _comparatives(text: str, level: str) -> Iterator[Finding]:
    """ "mais melhor", "mais bom": comparatives that are one word."""
    for match in _MAIS_COMPARATIVE.finditer(text):
        word = match["word"]
        yield _finding(
            match.group(0),
            word,
            f'"{word.lower()}" já quer dizer "mais": não se diz "mais {word.lower()}".',
            "grammar",
            "double_comparative",
            match.span(),
        )
    for match in _MAIS_ADJECTIVE.finditer(text):
        word = match["word"]
        right = _SYNTHETIC_COMPARATIVE[word.lower()]
        yield _finding(
            match.group(0),
            right,
            f'Não se diz "mais {word.lower()}": dizemos "{right}".',
            "grammar",
            "synthetic_comparative",
            match.span(),
        )


def _prepositions(text: str, level: str) -> Iterator[Finding]:
    """A missing, wrong or uncontracted preposition; "ir no" from B1."""
    for match in _PRECISAR_NO_DE.finditer(text):
        verb, following = match["verb"], match["next"]
        if following.lower() not in ("o", "a", "os", "as") and following.lower() not in _DE_BEFORE:
            continue
        linked = _CONTRACT_DE.get(following.lower(), f"de {following}")
        right = f"{verb} {linked}"
        yield _finding(
            match.group(0),
            right,
            f'"Precisar" pede "de" antes de um nome: "{right}".',
            "preposition",
            "precisar_de",
            match.span(),
        )
    for match in _PREPOSITION_ARTICLE.finditer(text):
        prep, article = match["prep"].lower(), match["article"].lower()
        following, after = match["next"].lower(), (match["after"] or "").lower()
        # "antes de o filme começar": the article belongs to an infinitive's subject.
        if following == "gente" or after in CONJUGATIONS or following in CONJUGATIONS:
            continue
        if prep == "de" and article in ("o", "a") and following in CONJUGATIONS:
            continue
        right = _CONTRACTIONS[(prep, article)]
        span = (match.start(), match.end("article"))
        original = text[span[0] : span[1]]
        yield _finding(
            original,
            _same_case(original, right),
            f'"{prep} + {article}" se junta: "{right}".',
            "preposition",
            "contraction",
            span,
        )
    if level_index(level) >= level_index(IR_EM_FROM):
        for match in _IR_EM.finditer(text):
            prep = match["prep"].lower()
            right = f"{match['ir']} {_TO_A[prep]}"
            yield _finding(
                match.group(0),
                right,
                f'Com o verbo "ir", o destino leva "a": "{right}" (a + o = ao, a + a = à).',
                "preposition",
                "ir_em",
                match.span(),
            )
    for match in _GOSTAR_NO_DE.finditer(text):
        following = match["next"].lower()
        if following in DETERMINER and following in ("o", "a", "os", "as"):
            linked = _CONTRACT_DE[following]
            span = (match.start("gostar"), match.end())
        elif following in NOUNS or following in CONJUGATIONS or following in _DE_BEFORE:
            linked = f"de {match['next']}"
            span = (match.start("gostar"), match.end())
        else:
            continue
        original = text[span[0] : span[1]]
        right = f"{match['gostar']} {linked}"
        yield _finding(
            original,
            right,
            f'O verbo "gostar" pede "de": "{right}".',
            "preposition",
            "gostar_de",
            span,
        )
    for pattern, wrong in _GOVERNED_RE:
        for match in pattern.finditer(text):
            word, prep = match["word"], match["prep"]
            if word.lower() not in FORMS and not word.lower().startswith("apaixonad"):
                continue  # "dependência", "sonho": a noun, not the verb
            right = f"{word} {wrong[prep.lower()]}"
            yield _finding(
                match.group(0),
                right,
                f'Dizemos "{right}".',
                "preposition",
                "governed_preposition",
                match.span(),
            )


def _ser_and_estar(text: str, level: str) -> Iterator[Finding]:
    """`ser` for a state, an age, a place or a feeling; `estar` for a role or an origin."""
    for match in _ESTAR_FROM.finditer(text):
        right_verb = _ESTAR_FORMS[match["estar"].lower()]
        original = match.group(0)
        yield _finding(
            original,
            _replace_first(original, match["estar"], right_verb),
            f'A origem se diz com "ser": "{right_verb} {match["prep"]} {match["place"]}".',
            "ser_estar",
            "estar_for_origin",
            match.span(),
        )
    for match in _SER_WITH_FEELING.finditer(text):
        verb, what = match["verb"], match["what"]
        if match["com"] and verb.lower() not in _TO_ESTAR:
            continue  # "estou com fome": right
        right = f"{_TO_ESTAR.get(verb.lower(), verb)} com {what}"
        yield _finding(
            match.group(0),
            _same_case(verb, right),
            f'Fome, sede, frio, sono: "estar com", "{right}" (ou "tenho {what}").',
            "ser_estar",
            "estar_com_feeling",
            match.span(),
        )
    for match in _SER_STATE.finditer(text):
        if match["word"].lower() not in _ESTAR_STATES:
            continue
        which = "ser" if match["ser"] else "ser1"
        ser = match[which]
        right_verb = _SER_FORMS[ser.lower()]
        start = match.start(which)
        original = text[start : match.end()]
        yield _finding(
            original,
            _replace_first(original, ser, right_verb),
            f'Para um estado do momento usamos "estar": "{right_verb} {match["word"].lower()}".',
            "ser_estar",
            "ser_for_state",
            (start, match.end()),
        )
    for match in _SER_AGE.finditer(text):
        which = "ser" if match["ser"] else "ser1"
        ser = match[which]
        right_verb = _SER_TO_TER[ser.lower()]
        start = match.start(which)
        original = text[start : match.end()]
        yield _finding(
            original,
            _replace_first(original, ser, right_verb),
            f'A idade se diz com "ter": "{right_verb} {match["age"]} anos".',
            "grammar",
            "ser_for_age",
            (start, match.end()),
        )
    for match in _SER_PLACE.finditer(text):
        ser = match["ser"]
        right_verb = _SER_FORMS[ser.lower()]
        start = match.start("ser")
        original = text[start : match.end()]
        yield _finding(
            original,
            _replace_first(original, ser, right_verb),
            f'Para dizer onde alguém está, usamos "estar": "{right_verb}".',
            "ser_estar",
            "ser_for_place",
            (start, match.end()),
        )
    for match in _ESTAR_ROLE.finditer(text):
        if match["word"].lower() not in _ROLES:
            continue
        estar = match["estar"]
        right_verb = _ESTAR_FORMS[estar.lower()]
        start = match.start("estar")
        original = text[start : match.end()]
        fixed = re.sub(r"\s+(?:um|uma)\s+", " ", _replace_first(original, estar, right_verb))
        yield _finding(
            original,
            fixed,
            f'Profissão e nacionalidade usam "ser": "{right_verb} {match["word"].lower()}".',
            "ser_estar",
            "estar_for_role",
            (start, match.end()),
        )


def _articles(text: str, level: str) -> Iterator[Finding]:
    """A country that takes its article ("em Brasil")."""
    for match in _COUNTRY_NO_ARTICLE.finditer(text):
        prep, country = match["prep"], match["country"]
        plural = country in _COUNTRY_PLURAL
        if prep.lower() == "em":
            right = f"{'nos' if plural else 'no'} {country}"
        elif prep.lower() == "de":
            right = f"{'dos' if plural else 'do'} {country}"
        else:
            right = f"{prep} {'os' if plural else 'o'} {country}"
        yield _finding(
            match.group(0),
            right,
            f'"{country}" usa artigo: "{right}".',
            "article",
            "country_article",
            match.span(),
        )


# ---------------------------------------------------------------------------------------


def _finding(
    original: str, corrected: str, explanation: str, kind: str, rule: str, span: tuple[int, int]
) -> Finding:
    return Finding(Correction(original, corrected, explanation, kind), "rules", rule, *span)


def _replace_last(text: str, word: str, right: str) -> str:
    at = text.lower().rfind(word.lower())
    return text[:at] + _same_case(text[at : at + len(word)], right) + text[at + len(word) :]


def _replace_first(text: str, word: str, right: str) -> str:
    at = text.lower().find(word.lower())
    return text[:at] + _same_case(text[at : at + len(word)], right) + text[at + len(word) :]


def _same_case(original: str, right: str) -> str:
    return right[:1].upper() + right[1:] if original[:1].isupper() else right


# Every rule: the learner's words and level in, its findings out.
_RULES: tuple[Callable[[str, str], Iterator[Finding]], ...] = (
    _agreement_and_tense,
    _adjective_agreement,
    _determiner_noun,
    _noun_verb_agreement,
    _numeral_noun,
    _noun_adjective,
    _habitual_past,
    _ongoing_past,
    _mood,
    _false_friends,
    _comparatives,
    _prepositions,
    _ser_and_estar,
    _articles,
)


def find(text: str, *, level: str = "A2") -> list[Finding]:
    """The learner errors PARLE's rules find in `text`, in the order they appear; where two
    rules flag the same words, the first (by position, then by rule order) stands."""
    found = [finding for rule in _RULES for finding in rule(text, level)]
    kept: list[Finding] = []
    for finding in sorted(found, key=lambda f: f.start):
        if not any(finding.start < k.end and k.start < finding.end for k in kept):
            kept.append(finding)
    return kept
