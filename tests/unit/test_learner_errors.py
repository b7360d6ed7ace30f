"""PARLE's learner-error rules (parle/tutor/learner_errors.py): each rule on the errors it is
for, and the correct speech it must leave alone (precision first). Measured on the labelled
set in bench/bench_corrections.py."""

from __future__ import annotations

import pytest

from parle.tutor.learner_errors import find


def found(text: str, level: str = "A2") -> list[tuple[str, str, str, str]]:
    return [
        (f.correction.original, f.correction.corrected, f.correction.kind, f.rule)
        for f in find(text, level=level)
    ]


@pytest.mark.parametrize(
    ("text", "original", "corrected", "kind"),
    [
        ("Olá! Meu nome é Marta e eu mora em Porto.", "eu mora", "eu moro", "agreement"),
        ("Eu tem vinte anos.", "Eu tem", "Eu tenho", "agreement"),
        ("Nós vai à praia no sábado.", "Nós vai", "Nós vamos", "agreement"),
        ("Eles gosta muito de futebol.", "Eles gosta", "Eles gostam", "agreement"),
        ("Você são muito simpático.", "Você são", "Você é", "agreement"),
        ("Eu também trabalha aqui.", "Eu também trabalha", "Eu também trabalho", "agreement"),
        ("Ontem eu vai ao cinema.", "eu vai", "eu fui", "agreement"),
        ("Ontem eu compro pão na padaria.", "eu compro", "eu comprei", "tense"),
        ("Amanhã eu fui ao médico.", "eu fui", "eu vou", "tense"),
        ("A minha casa é muito bonito.", "é muito bonito", "é muito bonita", "agreement"),
        ("Os livros são caro.", "são caro", "são caros", "agreement"),
        ("Minha mãe está cansado.", "está cansado", "está cansada", "agreement"),
        ("Ela é alto.", "é alto", "é alta", "agreement"),
        ("Eu comprei uma carro novo.", "uma carro", "um carro", "agreement"),
        ("O cidade é grande.", "O cidade", "A cidade", "agreement"),
        ("Ela é mais melhor que eu.", "mais melhor", "melhor", "grammar"),
        ("Eu sou cansado hoje.", "sou cansado", "estou cansado", "ser_estar"),
        ("Ele é no escritório agora.", "é no", "está no", "ser_estar"),
        ("Eu estou professor de inglês.", "estou professor", "sou professor", "ser_estar"),
        ("Eu gosto café.", "gosto café", "gosto de café", "preposition"),
        ("Eu gosto o filme.", "gosto o", "gosto do", "preposition"),
        ("Eu moro em Brasil.", "em Brasil", "no Brasil", "article"),
        ("Ela é dos Estados Unidos e ele de Japão.", "de Japão", "do Japão", "article"),
    ],
)
def test_a_rule_finds_the_error_and_says_it_right(
    text: str, original: str, corrected: str, kind: str
) -> None:
    (finding,) = find(text, level="A2")
    c = finding.correction
    assert (c.original, c.corrected, c.kind) == (original, corrected, kind)
    assert text[finding.start : finding.end] == original
    assert finding.source == "rules" and c.explanation


@pytest.mark.parametrize(
    ("text", "level", "original", "corrected"),
    [
        ("Eu sou trinta anos.", "A1", "sou trinta anos", "tenho trinta anos"),
        ("Quando eu era criança, eu joguei bola todos os dias.", "B1", "eu joguei", "eu jogava"),
        ("Na reunião eu realizei que estava atrasado.", "B2", "realizei que", "percebi que"),
        ("Duvido que ele vai aceitar.", "B2", "ele vai", "ele vá"),
        ("Espero que vocês gostam do presente.", "C1", "vocês gostam", "vocês gostem"),
        ("Comprei três camisas branco.", "A2", "camisas branco", "camisas brancas"),
        ("A gente vamos ao parque.", "A2", "A gente vamos", "A gente vai"),
        ("Os meninos corre no parque.", "A1", "Os meninos corre", "Os meninos correm"),
        ("Quando a minha mãe chegam, jantamos.", "A2", "a minha mãe chegam", "a minha mãe chega"),
        ("Tenho muito amigos no Rio.", "A1", "muito amigos", "muitos amigos"),
        ("Ela tem trinta ano.", "A1", "trinta ano", "trinta anos"),
        ("O telefone tocou e a arroz queimou.", "B1", "a arroz", "o arroz"),
        ("Eu preciso um carro novo.", "A2", "preciso um", "preciso de um"),
        ("Eu estou do Brasil.", "A1", "estou do Brasil", "sou do Brasil"),
        ("Eu sou com fome.", "A1", "sou com fome", "estou com fome"),
        ("Estou fome agora.", "A1", "Estou fome", "Estou com fome"),
        ("Eu moro em a cidade.", "A1", "em a", "na"),
        ("Passei por o parque.", "A2", "por o", "pelo"),
        ("Ela é mais grande do que eu.", "A2", "mais grande", "maior"),
        ("Isso é mais bom.", "A1", "mais bom", "melhor"),
        ("Essa casa amarela é muito pequeno.", "A1", "é muito pequeno", "é muito pequena"),
        ("Meu irmão é vinte e cinco anos.", "A1", "é vinte e cinco anos", "tem vinte e cinco anos"),
        ("Quando eu era dez anos, fui ao Rio.", "B1", "era dez anos", "tinha dez anos"),
        ("Um dia eu quero visitar México.", "A1", "visitar México", "visitar o México"),
        ("Eu como uma pizza com amigos ontem.", "A2", "Eu como", "Eu comi"),
        ("Passei as férias numa cidade pequeno.", "B1", "cidade pequeno", "cidade pequena"),
        ("Enquanto eu tomei banho, o telefone tocou.", "B1", "eu tomei", "eu tomava"),
        ("O celular dela era desligado.", "B1", "era desligado", "estava desligado"),
        ("Ele pretendeu que estava dormindo.", "B1", "pretendeu que", "fingiu que"),
        ("Ela está apaixonada de um colega.", "B1", "apaixonada de", "apaixonada por"),
        (
            "Assim que os documentos forem prontos, eu aviso.",
            "B2",
            "forem prontos",
            "estiverem prontos",
        ),
        ("Se eu tenho mais dinheiro, compraria uma casa.", "C1", "eu tenho", "eu tivesse"),
        ("Mesmo que ele pedia desculpas, eu não voltaria.", "C1", "ele pedia", "ele pedisse"),
        ("Se eu não estivesse ocupada, iria na academia.", "C1", "iria na", "iria à"),
        ("Eu insisto de pagar a conta.", "C1", "insisto de", "insisto em"),
        ("Tudo depende no tempo.", "B1", "depende no", "depende do"),
        ("O meu pai é no trabalho agora.", "A2", "é no", "está no"),
        ("Não fui porque sou doente.", "B1", "sou doente", "estou doente"),
    ],
)
def test_rules_for_age_habits_false_friends_mood_and_noun_phrases(
    text: str, level: str, original: str, corrected: str
) -> None:
    (finding,) = find(text, level=level)
    assert (finding.correction.original, finding.correction.corrected) == (original, corrected)


def test_the_subjunctive_is_taught_from_b2_only() -> None:
    assert found("Duvido que ele vai aceitar.", "B1") == []


def test_ir_no_is_taught_from_b1_only() -> None:
    # Colloquial Brazilian speech says "fui no mercado": a beginner is not corrected for it.
    assert found("Ontem eu fui no mercado.", "A2") == []
    assert found("Ontem eu fui no mercado.", "B1")[0][:2] == ("fui no", "fui ao")
    assert found("Vamos na praia amanhã?", "B2")[0][:2] == ("Vamos na", "Vamos à")


@pytest.mark.parametrize(
    "text",
    [
        "Eu trabalho como enfermeira e gosto de praia.",
        "Minha irmã e eu moramos em Lisboa.",
        "Estou a trabalhar em casa.",
        "Tu falas muito bem.",
        "Tu vai gostar da cidade.",
        "A gente vai ao cinema hoje.",
        "O problema é sério.",
        "O mapa é antigo.",
        "A foto é bonita.",
        "As pessoas são simpáticas.",
        "Eu gosto muito de ler.",
        "Eu vi ele ontem.",
        "Eu moro em Porto Alegre e trabalho na Petrobras.",
        "Moro em Portugal há dois anos.",
        "A festa é na casa da Ana.",
        "Ele é mais bonito que o irmão.",
        "Ontem eu estava cansado, mas hoje eu estou bem.",
        "Quando eu era criança, eu morava no Rio.",
        "Para ele é difícil acordar cedo.",
        "Eu sou professora e estou cansada.",
        "Vou a pé para o trabalho.",
        "Ela tem um carro novo e uma casa grande.",
        "Se eu tiver tempo, vou à praia.",
        "O meu pequeno-almoço é sempre pão com manteiga.",
        "Eu tenho trinta anos.",
        "Já são vinte anos de casados.",
        "Ele é dez anos mais velho que eu.",
        "Ele chegou em casa cansado.",
        "Comprei duas casas grandes e uma pessoa simpática me ajudou.",
        "Quando eu era criança, eu fui ao Brasil uma vez.",
        "Eu sempre fui tímido.",
        "Espero que você venha à festa.",
        "Acho que ele vai aceitar a proposta.",
        "Talvez ele venha amanhã.",
        "Eu realizei um sonho: morar no Rio.",
        "No sábado passado nós visitamos a minha avó.",
        "Os ônibus sempre atrasam.",
        "É muito tarde e a comida é muito doce.",
        "Outra vez, por favor.",
        "Eu estou de férias e estou com fome.",
        "Eu preciso ir embora.",
        "Antes de o filme começar, compramos pipoca.",
        "A casa da gente é grande.",
        "Quero mais bons livros.",
        "Ela deu a volta ao mundo.",
        "Tenho 1 filho e duas filhas.",
        "Vou a pé e ele vai a cavalo.",
        "Que os alunos estudam muito é verdade.",
        "Você é a Marina, uma colega de turma simpática e curiosa.",
        "Meus avós moram no interior.",
        "A loja é aberta aos domingos.",
        "Se eu tivesse tempo, viajaria mais.",
        "Se você quiser, a gente vai amanhã.",
        "Enquanto eu estudava, ela cozinhava.",
        "Ele é ligado em música.",
        "Minha dependência de café é grande.",
        "Eu sonhei com você.",
        "Conheci o Brasil em 2019.",
    ],
)
def test_correct_speech_is_left_alone(text: str) -> None:
    assert found(text, "C1") == []


def test_one_finding_per_span_and_in_text_order() -> None:
    text = "Eu tem uma carro e ela é mais melhor."
    assert [f[0] for f in found(text)] == ["Eu tem", "uma carro", "mais melhor"]
