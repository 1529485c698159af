"""/stats as a picture: questions per day by language, and the share that got an answer.

Admins look rather than read; a month of daily figures is a shape, not a table. The chart is
drawn with matplotlib's Agg backend through its object API (no pyplot, no global state, no
display), so it is safe to draw in a worker thread while the bot keeps answering. Every label
comes from the locale files, in the admin's language.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from bot.i18n import translate
from bot.knowledge.models import LANGUAGES
from bot.render import language_name
from bot.storage import DailyQuestions

#: One colour per language, distinguishable for the common colour-vision deficiencies.
COLOURS = {"en": "#0072B2", "sv": "#E69F00", "da": "#009E73"}
SHARE_COLOUR = "#CC3311"


@dataclass(frozen=True)
class ChartData:
    days: list[date]
    per_language: dict[str, list[int]]  # questions per day, same order as `days`
    share: list[float | None]  # answered / asked per day; None on days without questions

    @property
    def total(self) -> int:
        return sum(sum(counts) for counts in self.per_language.values())


def chart_data(rows: Sequence[DailyQuestions], since: date, until: date) -> ChartData:
    """Every day of the window, days without questions included (as zeros)."""
    days = [since + timedelta(days=n) for n in range((until - since).days + 1)]
    index = {day: n for n, day in enumerate(days)}
    per_language = {lang: [0] * len(days) for lang in LANGUAGES}
    answered = [0] * len(days)
    for row in rows:
        n = index.get(row.day)
        if n is None or row.language not in per_language:
            continue
        per_language[row.language][n] += row.questions
        answered[n] += row.answered
    share: list[float | None] = []
    for n in range(len(days)):
        asked = sum(per_language[lang][n] for lang in LANGUAGES)
        share.append(answered[n] / asked if asked else None)
    return ChartData(days, per_language, share)


def render_stats_chart(data: ChartData, lang: str) -> bytes:
    """A PNG: stacked bars of questions per day and language, the answered share as a line on
    a second axis (0-100 %). Blocking: call it in a worker thread."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    figure = Figure(figsize=(9, 4.5), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    positions = list(range(len(data.days)))
    bottom = [0] * len(data.days)
    for code in LANGUAGES:
        counts = data.per_language[code]
        axes.bar(
            positions,
            counts,
            bottom=bottom,
            color=COLOURS[code],
            label=language_name(code, lang).capitalize(),
            width=0.8,
        )
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    axes.set_ylabel(translate(lang, "admin.chart_questions"))
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(0, max(max(bottom, default=0), 1) * 1.15)
    step = max(1, len(data.days) // 10)
    axes.set_xticks(positions[::step])
    axes.set_xticklabels(
        [f"{day.day}/{day.month}" for day in data.days[::step]], rotation=0, fontsize=8
    )
    axes.set_xlim(-0.6, len(data.days) - 0.4)
    axes.grid(axis="y", alpha=0.3)

    share_axes = axes.twinx()
    points = [(x, s * 100) for x, s in zip(positions, data.share, strict=True) if s is not None]
    if points:
        share_axes.plot(
            [x for x, _ in points],
            [y for _, y in points],
            color=SHARE_COLOUR,
            marker="o",
            markersize=3,
            linewidth=1.5,
            label=translate(lang, "admin.chart_answered"),
        )
    share_axes.set_ylim(0, 105)
    share_axes.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    share_axes.set_ylabel(translate(lang, "admin.chart_answered"))

    handles, labels = axes.get_legend_handles_labels()
    share_handles, share_labels = share_axes.get_legend_handles_labels()
    axes.legend(handles + share_handles, labels + share_labels, loc="upper left", fontsize=8)
    first, last = data.days[0], data.days[-1]
    axes.set_title(
        translate(
            lang,
            "admin.chart_title",
            since=f"{first.day}/{first.month}",
            until=f"{last.day}/{last.month} {last.year}",
        )
    )
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
