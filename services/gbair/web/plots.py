"""The accuracy plot of a job's rounds as inline SVG, drawn on the server: no chart library in the page."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

from gbair.v1 import gbair_pb2 as pb

WIDTH, HEIGHT = 480, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 34  # room for the axis labels


def accuracy_svg(rounds: Sequence[pb.RoundMetrics], best_round: int | None = None) -> Markup:
    """Validation (and, where measured, test) accuracy by round; the best round marked. The y axis spans
    the data, padded, since the differences between rounds are often a few points."""
    if not rounds:
        return Markup("")
    series = {"validation": [(r.round, r.val_accuracy) for r in rounds]}
    tested = [(r.round, r.test_accuracy) for r in rounds if r.HasField("test_accuracy")]
    if tested:
        series["test"] = tested
    values = [v for points in series.values() for _, v in points]
    low = max(0.0, min(values) - 0.05)
    high = min(1.0, max(values) + 0.05)
    if high - low < 0.1:
        low, high = max(0.0, high - 0.1), max(high, 0.1)
    first, last = rounds[0].round, rounds[-1].round
    span = max(last - first, 1)

    def x(round_index: int) -> float:
        return LEFT + (round_index - first) / span * (WIDTH - LEFT - RIGHT)

    def y(value: float) -> float:
        return TOP + (high - value) / (high - low) * (HEIGHT - TOP - BOTTOM)

    parts = [f'<svg class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="plot-title">',
             '<title id="plot-title">Accuracy by round</title>']
    for k in range(5):
        value = low + (high - low) * k / 4
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:.2f}</text>')
    for r in rounds:
        parts.append(f'<text class="tick" x="{x(r.round):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{r.round}</text>')
    parts.append(f'<text class="tick" x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 4}" text-anchor="middle">round</text>')
    if best_round is not None and first <= best_round <= last:
        parts.append(f'<line class="best" x1="{x(best_round):.1f}" x2="{x(best_round):.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}"/>')
    for name, points in series.items():
        path = " ".join(f"{x(r):.1f},{y(v):.1f}" for r, v in points)
        parts.append(f'<polyline class="line {name}" points="{path}"/>')
        parts += [f'<circle class="dot {name}" cx="{x(r):.1f}" cy="{y(v):.1f}" r="3.5"><title>{name} {v:.3f} in round {r}</title></circle>'
                  for r, v in points]
    parts.append("</svg>")
    return Markup("".join(parts))
