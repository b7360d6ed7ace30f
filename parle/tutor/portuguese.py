"""Portuguese as PARLE's learner-error rules (`parle.tutor.learner_errors`) read it: what a
word form is. The conjugations of the verbs learners use most (present, preterite and
imperfect indicative; the subjunctives some rules suggest), the subject pronouns' persons, the
determiners by gender and number, the gender of common nouns, and the adjectives' four forms.

Closed tables, written for the rules: a word outside them is unknown, and a rule never calls
an unknown word an error. (The level estimator's tables in `levels.py` rank words by level.)
"""

from __future__ import annotations

from dataclasses import dataclass

Person = str  # "1s", "2s", "3s", "1p", "3p"
Tense = str  # "pres", "pret", "imp"
Gender = str  # "m", "f"
Number = str  # "s", "p"

WORD = r"[A-Za-zÀ-ÿ]+"  # one word, in a regular expression


def words(text: str) -> list[str]:
    return text.split()


# ---------------------------------------------------------------------------------------
# Verbs

PERSONS = ("1s", "2s", "3s", "1p", "3p")

_ENDINGS: dict[str, dict[Tense, tuple[str, ...]]] = {
    "ar": {
        "pres": ("o", "as", "a", "amos", "am"),
        "pret": ("ei", "aste", "ou", "amos", "aram"),
        "imp": ("ava", "avas", "ava", "ávamos", "avam"),
    },
    "er": {
        "pres": ("o", "es", "e", "emos", "em"),
        "pret": ("i", "este", "eu", "emos", "eram"),
        "imp": ("ia", "ias", "ia", "íamos", "iam"),
    },
    "ir": {
        "pres": ("o", "es", "e", "imos", "em"),
        "pret": ("i", "iste", "iu", "imos", "iram"),
        "imp": ("ia", "ias", "ia", "íamos", "iam"),
    },
}

_REGULAR = words(
    """
morar trabalhar falar estudar gostar comprar cozinhar jantar almoçar andar viajar visitar
chamar precisar achar ajudar usar tomar levar pagar chegar ficar começar jogar dançar
cantar nadar descansar acordar deitar lavar limpar esperar escutar olhar mandar tocar
ganhar gastar morar mudar pensar lembrar encontrar entrar voltar passar adorar amar odiar
preparar terminar alugar acabar trocar mostrar perguntar explicar ensinar praticar caminhar
correr comer beber aprender escrever vender entender responder viver conhecer receber
parecer esquecer nascer abrir partir decidir assistir discutir dividir existir permitir
brincar ligar desligar procurar buscar arrumar mexer tirar aceitar negociar reclamar
treinar torcer sonhar casar separar demorar atrasar economizar convencer melhorar piorar
chorar acreditar levantar sentar deixar continuar cuidar escolher resolver depender prometer
insistir cumprir garantir reservar convidar estacionar entregar pegar planejar organizar
participar conversar enviar consertar quebrar custar funcionar chover nevar
"""
)

# Irregular verbs: a tense's five forms in `PERSONS` order.
_IRREGULAR: dict[str, dict[Tense, tuple[str, ...]]] = {
    "ser": {
        "pres": ("sou", "és", "é", "somos", "são"),
        "pret": ("fui", "foste", "foi", "fomos", "foram"),
        "imp": ("era", "eras", "era", "éramos", "eram"),
    },
    "estar": {
        "pres": ("estou", "estás", "está", "estamos", "estão"),
        "pret": ("estive", "estiveste", "esteve", "estivemos", "estiveram"),
        "imp": ("estava", "estavas", "estava", "estávamos", "estavam"),
    },
    "ter": {
        "pres": ("tenho", "tens", "tem", "temos", "têm"),
        "pret": ("tive", "tiveste", "teve", "tivemos", "tiveram"),
        "imp": ("tinha", "tinhas", "tinha", "tínhamos", "tinham"),
    },
    "ir": {
        "pres": ("vou", "vais", "vai", "vamos", "vão"),
        "pret": ("fui", "foste", "foi", "fomos", "foram"),
        "imp": ("ia", "ias", "ia", "íamos", "iam"),
    },
    "fazer": {
        "pres": ("faço", "fazes", "faz", "fazemos", "fazem"),
        "pret": ("fiz", "fizeste", "fez", "fizemos", "fizeram"),
        "imp": ("fazia", "fazias", "fazia", "fazíamos", "faziam"),
    },
    "poder": {
        "pres": ("posso", "podes", "pode", "podemos", "podem"),
        "pret": ("pude", "pudeste", "pôde", "pudemos", "puderam"),
        "imp": ("podia", "podias", "podia", "podíamos", "podiam"),
    },
    "querer": {
        "pres": ("quero", "queres", "quer", "queremos", "querem"),
        "pret": ("quis", "quiseste", "quis", "quisemos", "quiseram"),
        "imp": ("queria", "querias", "queria", "queríamos", "queriam"),
    },
    "saber": {
        "pres": ("sei", "sabes", "sabe", "sabemos", "sabem"),
        "pret": ("soube", "soubeste", "soube", "soubemos", "souberam"),
        "imp": ("sabia", "sabias", "sabia", "sabíamos", "sabiam"),
    },
    "ver": {
        "pres": ("vejo", "vês", "vê", "vemos", "veem"),
        "pret": ("vi", "viste", "viu", "vimos", "viram"),
        "imp": ("via", "vias", "via", "víamos", "viam"),
    },
    "vir": {
        "pres": ("venho", "vens", "vem", "vimos", "vêm"),
        "pret": ("vim", "vieste", "veio", "viemos", "vieram"),
        "imp": ("vinha", "vinhas", "vinha", "vínhamos", "vinham"),
    },
    "dar": {
        "pres": ("dou", "dás", "dá", "damos", "dão"),
        "pret": ("dei", "deste", "deu", "demos", "deram"),
        "imp": ("dava", "davas", "dava", "dávamos", "davam"),
    },
    "dizer": {
        "pres": ("digo", "dizes", "diz", "dizemos", "dizem"),
        "pret": ("disse", "disseste", "disse", "dissemos", "disseram"),
        "imp": ("dizia", "dizias", "dizia", "dizíamos", "diziam"),
    },
    "trazer": {
        "pres": ("trago", "trazes", "traz", "trazemos", "trazem"),
        "pret": ("trouxe", "trouxeste", "trouxe", "trouxemos", "trouxeram"),
        "imp": ("trazia", "trazias", "trazia", "trazíamos", "traziam"),
    },
    "ler": {
        "pres": ("leio", "lês", "lê", "lemos", "leem"),
        "pret": ("li", "leste", "leu", "lemos", "leram"),
        "imp": ("lia", "lias", "lia", "líamos", "liam"),
    },
    "sair": {
        "pres": ("saio", "sais", "sai", "saímos", "saem"),
        "pret": ("saí", "saíste", "saiu", "saímos", "saíram"),
        "imp": ("saía", "saías", "saía", "saíamos", "saíam"),
    },
    "dormir": {
        "pres": ("durmo", "dormes", "dorme", "dormimos", "dormem"),
        "pret": ("dormi", "dormiste", "dormiu", "dormimos", "dormiram"),
        "imp": ("dormia", "dormias", "dormia", "dormíamos", "dormiam"),
    },
    "preferir": {
        "pres": ("prefiro", "preferes", "prefere", "preferimos", "preferem"),
        "pret": ("preferi", "preferiste", "preferiu", "preferimos", "preferiram"),
        "imp": ("preferia", "preferias", "preferia", "preferíamos", "preferiam"),
    },
    "sentir": {
        "pres": ("sinto", "sentes", "sente", "sentimos", "sentem"),
        "pret": ("senti", "sentiste", "sentiu", "sentimos", "sentiram"),
        "imp": ("sentia", "sentias", "sentia", "sentíamos", "sentiam"),
    },
    "pedir": {
        "pres": ("peço", "pedes", "pede", "pedimos", "pedem"),
        "pret": ("pedi", "pediste", "pediu", "pedimos", "pediram"),
        "imp": ("pedia", "pedias", "pedia", "pedíamos", "pediam"),
    },
    "ouvir": {
        "pres": ("ouço", "ouves", "ouve", "ouvimos", "ouvem"),
        "pret": ("ouvi", "ouviste", "ouviu", "ouvimos", "ouviram"),
        "imp": ("ouvia", "ouvias", "ouvia", "ouvíamos", "ouviam"),
    },
    "conseguir": {
        "pres": ("consigo", "consegues", "consegue", "conseguimos", "conseguem"),
        "pret": ("consegui", "conseguiste", "conseguiu", "conseguimos", "conseguiram"),
        "imp": ("conseguia", "conseguias", "conseguia", "conseguíamos", "conseguiam"),
    },
    "pôr": {
        "pres": ("ponho", "pões", "põe", "pomos", "põem"),
        "pret": ("pus", "puseste", "pôs", "pusemos", "puseram"),
        "imp": ("punha", "punhas", "punha", "púnhamos", "punham"),
    },
}

# Forms that are also frequent other words (a conjunction, a noun, a preposition): never
# read as a verb that disagrees.
NOT_ONLY_VERBS = frozenset(
    words(
        "como para casa conta sobre canto pena passo caso fora ando cedo cria vendo sede nada vale"
    )
)


@dataclass(frozen=True)
class Form:
    lemma: str
    tense: Tense
    person: Person


def _conjugate(lemma: str) -> dict[Tense, tuple[str, ...]]:
    if lemma in _IRREGULAR:
        return _IRREGULAR[lemma]
    stem, group = lemma[:-2], lemma[-2:]
    tenses = {tense: tuple(stem + e for e in endings) for tense, endings in _ENDINGS[group].items()}
    pret = list(tenses["pret"])
    if group == "ar":  # spelling before -ei: ficar -> fiquei, chegar -> cheguei
        for end, fixed in (("c", "qu"), ("g", "gu"), ("ç", "c")):
            if stem.endswith(end):
                pret[0] = stem[: -len(end)] + fixed + "ei"
        tenses["pret"] = tuple(pret)
    if group == "er" and stem.endswith("c"):  # conhecer -> conheço
        tenses["pres"] = (stem[:-1] + "ço", *tenses["pres"][1:])
    return tenses


CONJUGATIONS = {lemma: _conjugate(lemma) for lemma in [*_REGULAR, *_IRREGULAR]}
FORMS: dict[str, list[Form]] = {}
for _lemma, _tenses in CONJUGATIONS.items():
    for _tense, _forms in _tenses.items():
        for _person, _form in zip(PERSONS, _forms, strict=True):
            FORMS.setdefault(_form, []).append(Form(_lemma, _tense, _person))


def form_of(lemma: str, tense: Tense, person: Person) -> str:
    return CONJUGATIONS[lemma][tense][PERSONS.index(person)]


# The persons a subject pronoun takes (BR `tu` takes the third person too).
PRONOUN_PERSONS: dict[str, tuple[Person, ...]] = {
    "eu": ("1s",),
    "tu": ("2s", "3s"),
    "você": ("3s",),
    "ele": ("3s",),
    "ela": ("3s",),
    "nós": ("1p",),
    "vocês": ("3p",),
    "eles": ("3p",),
    "elas": ("3p",),
    "a gente": ("3s",),  # "a gente vai": "nós" in meaning, the third person in form
}


# ---------------------------------------------------------------------------------------
# Determiners, nouns and adjectives

# Determiner families: (m s, f s, m p, f p).
DETERMINERS = (
    ("o", "a", "os", "as"),
    ("um", "uma", "uns", "umas"),
    ("meu", "minha", "meus", "minhas"),
    ("teu", "tua", "teus", "tuas"),
    ("seu", "sua", "seus", "suas"),
    ("nosso", "nossa", "nossos", "nossas"),
    ("esse", "essa", "esses", "essas"),
    ("este", "esta", "estes", "estas"),
    ("aquele", "aquela", "aqueles", "aquelas"),
    ("muito", "muita", "muitos", "muitas"),
    ("pouco", "pouca", "poucos", "poucas"),
    ("outro", "outra", "outros", "outras"),
    ("algum", "alguma", "alguns", "algumas"),
    ("nenhum", "nenhuma", "nenhuns", "nenhumas"),
)
SLOTS = (("m", "s"), ("f", "s"), ("m", "p"), ("f", "p"))
DETERMINER: dict[str, tuple[int, Gender, Number]] = {
    word: (family, *SLOTS[slot])
    for family, words in enumerate(DETERMINERS)
    for slot, word in enumerate(words)
}

_MASCULINE = words(
    """
carro livro dia mapa problema sistema programa tema clima idioma planeta cinema trabalho
filho irmão pai amigo restaurante hotel hospital mercado escritório apartamento quarto
banheiro jantar almoço café ônibus trem país lugar bairro prédio parque museu dinheiro
tempo ano mês cachorro gato telefone celular computador filme jogo time professor médico
homem menino presente vinho suco pão queijo peixe frango arroz feijão leite chá futebol
verão inverno aniversário emprego salário coração olho pé braço nome endereço mar rio sol
céu mundo marido namorado avô tio primo vizinho supermercado aeroporto
teatro jardim sofá quadro relógio carnaval bolo doce sorvete ovo prato copo garfo
"""
)
_FEMININE = words(
    """
casa cidade mãe irmã filha amiga escola universidade praia rua loja padaria farmácia
igreja cozinha sala janela porta mesa cadeira cama comida bebida água cerveja fruta maçã
banana carne sopa salada foto mão viagem família música aula prova língua palavra semana
hora noite manhã tarde vida empresa reunião estação televisão bicicleta moto chuva festa
profissão pessoa criança mulher menina professora médica roupa camisa saia bolsa chave cor
flor dor árvore montanha ilha ideia história cultura natureza saúde paz vez voz luz avó
tia prima vizinha esposa namorada piscina biblioteca academia pizza
"""
)
# Nouns of both genders ("o colega", "a colega", "estudante", "chefe") are in neither list:
# their gender is the determiner's to say.
_NOUN_GENDER: dict[str, Gender] = {
    **{n: "m" for n in _MASCULINE},
    **{n: "f" for n in _FEMININE},
}


def plural(word: str) -> str:
    if word.endswith("ão"):
        return word[:-2] + "ões"
    if word.endswith(("r", "z", "s")):
        return word + "es" if not word.endswith("s") else word
    if word.endswith("m"):
        return word[:-1] + "ns"
    if word.endswith("l"):
        return word[:-1] + "is"
    return word + "s"


DETERMINER_WORDS = "|".join(sorted(DETERMINER, key=len, reverse=True))

# Plurals that are another word too: "avós" is the grandmothers and the grandparents.
_AMBIGUOUS_PLURALS = frozenset({"avós"})
NOUNS: dict[str, tuple[Gender, Number]] = {}
for _noun, _gender in _NOUN_GENDER.items():
    if plural(_noun) == _noun:
        continue  # "o ônibus", "os ônibus": its number is the determiner's to say
    NOUNS[_noun] = (_gender, "s")
    if plural(_noun) not in _AMBIGUOUS_PLURALS:
        NOUNS.setdefault(plural(_noun), (_gender, "p"))

# Adjectives by their masculine singular; invariable ones by gender only vary in number.
_ADJECTIVES_O = words(
    """
bonito feio caro barato novo velho alto baixo pequeno cansado ocupado lindo rico gordo
magro branco preto vermelho amarelo moderno antigo limpo sujo cheio vazio frio delicioso
gostoso famoso perigoso tranquilo calmo simpático antipático cansativo divertido chato
engraçado lotado aberto fechado pronto sério estranho gelado apertado largo curto comprido
escuro claro lento rápido preocupado nervoso animado atrasado orgulhoso molhado seco
salgado caseiro brasileiro americano italiano mexicano japonês sozinho ótimo péssimo
perfeito maravilhoso barulhento silencioso bravo honesto generoso educado organizado
bagunçado confuso lindo quieto esperto curioso
"""
)
_ADJECTIVES_INVARIABLE = words(
    """
grande triste feliz difícil fácil legal interessante importante inteligente elegante alegre
jovem ruim quente doente forte livre doce incrível horrível agradável confortável simples
"""
)
_IRREGULAR_ADJECTIVES = {
    "bom": ("bom", "boa", "bons", "boas"),
    "mau": ("mau", "má", "maus", "más"),
    "português": ("português", "portuguesa", "portugueses", "portuguesas"),
    "inglês": ("inglês", "inglesa", "ingleses", "inglesas"),
    "francês": ("francês", "francesa", "franceses", "francesas"),
    "japonês": ("japonês", "japonesa", "japoneses", "japonesas"),
    "alemão": ("alemão", "alemã", "alemães", "alemãs"),
}
_INVARIABLE_PLURALS = {
    "difícil": "difíceis",
    "fácil": "fáceis",
    "incrível": "incríveis",
    "horrível": "horríveis",
    "agradável": "agradáveis",
    "confortável": "confortáveis",
    "legal": "legais",
    "simples": "simples",
}


def adjective_forms(lemma: str) -> tuple[str, str, str, str]:
    """(m s, f s, m p, f p); gender-invariable adjectives repeat their form."""
    if lemma in _IRREGULAR_ADJECTIVES:
        return _IRREGULAR_ADJECTIVES[lemma]
    if lemma in _ADJECTIVES_INVARIABLE:
        many = _INVARIABLE_PLURALS.get(lemma, plural(lemma))
        return (lemma, lemma, many, many)
    stem = lemma[:-1]
    return (lemma, stem + "a", stem + "os", stem + "as")


# form -> (lemma, genders it can be, number)
ADJECTIVES: dict[str, list[tuple[str, Gender | None, Number]]] = {}
for _adj in [*_ADJECTIVES_O, *_ADJECTIVES_INVARIABLE, *_IRREGULAR_ADJECTIVES]:
    _all = adjective_forms(_adj)
    _variable = _all[0] != _all[1]
    for (_g, _n), _f in zip(SLOTS, _all, strict=True):
        entry = (_adj, _g if _variable else None, _n)
        if entry not in ADJECTIVES.setdefault(_f, []):
            ADJECTIVES[_f].append(entry)


def inflect(lemma: str, gender: Gender, number: Number) -> str:
    return adjective_forms(lemma)[SLOTS.index((gender, number))]


# ---------------------------------------------------------------------------------------
# The subjunctive (what a rule suggests after "espero que", "se ... compraria")

# Present subjunctive's first and third person singular of the irregular verbs.
_SUBJUNCTIVE_IRREGULAR = {
    "ser": "seja", "estar": "esteja", "ter": "tenha", "ir": "vá", "fazer": "faça",
    "poder": "possa", "querer": "queira", "saber": "saiba", "ver": "veja", "vir": "venha",
    "dar": "dê", "dizer": "diga", "trazer": "traga", "ler": "leia", "sair": "saia",
    "dormir": "durma", "preferir": "prefira", "sentir": "sinta", "pedir": "peça",
    "ouvir": "ouça", "conseguir": "consiga", "pôr": "ponha", "conhecer": "conheça",
}  # fmt: skip


def present_subjunctive(lemma: str, person: Person) -> str:
    if lemma in _SUBJUNCTIVE_IRREGULAR:
        singular = _SUBJUNCTIVE_IRREGULAR[lemma]
        if lemma == "ir":
            return {"1p": "vamos", "3p": "vão"}.get(person, "vá")
        stem = singular[:-1]
        vowel = singular[-1]
        return {"1p": stem + vowel + "mos", "3p": stem + vowel + "m"}.get(person, singular)
    first = form_of(lemma, "pres", "1s")
    stem, vowel = first[:-1], "e" if lemma.endswith("ar") else "a"
    if lemma.endswith("ar"):  # ficar -> fique, chegar -> chegue, começar -> comece
        for end, fixed in (("c", "qu"), ("g", "gu"), ("ç", "c")):
            if stem.endswith(end):
                stem = stem[: -len(end)] + fixed
    return {"1p": stem + vowel + "mos", "3p": stem + vowel + "m"}.get(person, stem + vowel)


def past_subjunctive(lemma: str, person: Person) -> str:
    """The imperfect subjunctive, from the preterite's third person plural: tiveram ->
    tivesse, tivéssemos, tivessem."""
    stem = form_of(lemma, "pret", "3p")[: -len("ram")]
    if person == "1p":
        accented = {"a": "á", "e": "ê", "i": "í", "o": "ô"}
        return stem[:-1] + accented.get(stem[-1], stem[-1]) + "ssemos"
    return stem + ("ssem" if person == "3p" else "sse")
