"""A learner's progress as one HTML page (`GET /api/learners/{id}/report`): the charts are SVG
rendered here by pygal (no script, nothing fetched by the browser), the page readable on a
phone. Every value a learner said is escaped."""

from __future__ import annotations

import datetime as dt
import re
from html import escape
from typing import Any

import pygal
from pygal.style import Style

from parle.tutor.levels import LEVELS

_STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#1d2433",
    foreground_strong="#1d2433",
    foreground_subtle="#c8cfdd",
    colors=("#2f6fde", "#d8392b", "#2b9d5a", "#b97a00", "#7b4fd1"),
    font_family="system-ui, sans-serif",
    title_font_size=22,
    label_font_size=18,
    major_label_font_size=18,
    value_font_size=16,
    tooltip_font_size=16,
)

KIND_NAMES = {
    "grammar": "gramática",
    "vocabulary": "vocabulário",
    "pronunciation": "pronúncia",
    "spelling": "ortografia",
    "other": "outros",
}


def _chart_options() -> dict[str, Any]:
    # No JavaScript (pygal's tooltips would load a script from the internet), scalable SVG.
    return {
        "style": _STYLE,
        "js": [],
        "disable_xml_declaration": True,
        "explicit_size": False,
        "width": 520,
        "height": 300,
        "show_legend": False,
        "print_values": False,
        "margin": 16,
    }


# pygal puts its chart config in a <script> for its tooltip library, which is never loaded
# here: the page carries no script at all.
_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL | re.IGNORECASE)


def _svg(chart: Any) -> str:
    return _SCRIPT.sub("", str(chart.render(is_unicode=True)))


def _when(value: str | None) -> str:
    if not value:
        return ""
    try:
        return dt.datetime.fromisoformat(value.removesuffix("Z")).strftime("%d/%m %H:%M")
    except ValueError:
        return value


def level_chart(history: list[dict[str, Any]]) -> str:
    chart = pygal.Line(
        title="Nível ao longo do tempo",
        range=(1, len(LEVELS)),
        y_labels=[{"label": level, "value": i + 1} for i, level in enumerate(LEVELS)],
        x_label_rotation=0,
        show_minor_x_labels=False,
        interpolate=None,
        dots_size=5,
        **_chart_options(),
    )
    chart.x_labels = [_when(point["at"]) for point in history]
    chart.x_labels_major_count = 4
    chart.add("nível", [LEVELS.index(point["level"]) + 1 for point in history])
    return _svg(chart)


def pace_chart(sessions: list[dict[str, Any]], first: int = 1) -> str:
    chart = pygal.Bar(title="Palavras por minuto, por sessão", **_chart_options())
    chart.x_labels = [f"#{first + i}" for i in range(len(sessions))]
    chart.add("palavras/min", [s["words_per_minute"] for s in sessions])
    return _svg(chart)


def corrections_chart(by_kind: dict[str, int]) -> str:
    options = {**_chart_options(), "print_values": True}
    # Whole numbers on the count axis: corrections are counted, not measured.
    options["y_labels"] = list(range(max(by_kind.values(), default=0) + 1))
    chart = pygal.HorizontalBar(title="Correções por tipo", **options)
    chart.x_labels = [KIND_NAMES.get(kind, kind) for kind in by_kind]
    chart.add("correções", list(by_kind.values()))
    return _svg(chart)


def _list(items: list[str], empty: str) -> str:
    if not items:
        return f'<p class="empty">{escape(empty)}</p>'
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


_FACT_NAMES = {
    "name": "Nome",
    "country": "De onde é",
    "city": "Mora em",
    "job": "Trabalho",
    "interest": "Gosta de",
}

_CSS = """
:root { font-family: system-ui, sans-serif; color: #1d2433; background: #f4f6fb; }
main { max-width: 46rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .5rem 0; word-break: break-all; }
h2 { font-size: 1.15rem; margin: 1.4rem 0 .5rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(8rem, 1fr)); gap: .6rem; }
.card { background: white; border: 1px solid #dde2ec; border-radius: .7rem; padding: .7rem; }
.card b { display: block; font-size: 1.5rem; }
.chart { background: white; border: 1px solid #dde2ec; border-radius: .7rem; margin: .8rem 0;
         padding: .3rem; }
.chart svg { width: 100%; height: auto; display: block; }
ul { padding-left: 1.2rem; } li { margin: .25rem 0; }
.empty { color: #5a6478; }
.words span { display: inline-block; background: #dfe8fb; border-radius: 1rem;
              padding: .15rem .6rem; margin: .15rem; }
"""


def render_report(report: dict[str, Any]) -> str:
    """The whole page for `LearnerStore.report`'s dictionary."""
    sessions = report["sessions"]
    corrections = report["corrections"]
    facts = report["facts"]
    cards = [
        ("nível", report["level"] or "-"),
        ("sessões", str(report.get("sessions_total", len(sessions)))),
        ("falas", str(report["turns"])),
        ("palavras/min", "-" if report["words_per_minute"] is None else
         f"{report['words_per_minute']:.0f}"),
        ("palavras usadas", str(report["vocabulary"]["total"])),
    ]  # fmt: skip
    charts = [level_chart(report["level_history"]) if report["level_history"] else ""]
    if any(s["words_per_minute"] is not None for s in sessions):
        # The report holds the latest sessions only: numbered as of all of them.
        total = report.get("sessions_total", len(sessions))
        charts.append(pace_chart(sessions, first=total - len(sessions) + 1))
    if corrections["by_kind"]:
        charts.append(corrections_chart(corrections["by_kind"]))
    fact_items = [
        f"<b>{escape(_FACT_NAMES.get(kind, kind))}:</b> {escape(', '.join(values))}"
        for kind, values in facts.items()
    ]
    mistakes = [
        f"<s>{escape(m['original'])}</s> → <b>{escape(m['corrected'])}</b> ({m['count']}×)"
        for m in report["recurring_mistakes"]
    ]
    recent = [
        f"<s>{escape(c['original'])}</s> → <b>{escape(c['corrected'])}</b>"
        + (f" — {escape(c['explanation'])}" if c["explanation"] else "")
        for c in corrections["recent"]
    ]
    words = "".join(f"<span>{escape(w)}</span>" for w in report["vocabulary"]["new_words"])
    body = [
        f"<h1>Seu progresso: {escape(report['learner_id'])}</h1>",
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{escape(v)}</b>{escape(k)}</div>' for k, v in cards)
        + "</div>",
        *(f'<div class="chart">{svg}</div>' for svg in charts if svg),
        "<h2>Sobre você</h2>",
        _list(fact_items, "Conte à professora sobre você!"),
        "<h2>Erros que se repetem</h2>",
        _list(mistakes, "Nenhum erro repetido."),
        "<h2>Correções recentes</h2>",
        _list(recent, "Nenhuma correção ainda."),
        "<h2>Palavras novas</h2>",
        f'<p class="words">{words}</p>' if words else '<p class="empty">Nenhuma ainda.</p>',
    ]
    return (
        '<!doctype html>\n<html lang="pt-BR"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>PARLE - progresso de {escape(report['learner_id'])}</title>"
        f"<style>{_CSS}</style></head><body><main>" + "\n".join(body) + "</main></body></html>"
    )
