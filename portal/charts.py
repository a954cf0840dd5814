"""Small inline SVG charts rendered on the server: no script, readable without styles."""

from html import escape

WIDTH = 600
HEIGHT = 160


def bars(values: list[int], title: str) -> str:
    """A bar chart of `values`, left to right, with a text title for screen readers."""
    peak = max(values, default=0) or 1
    step = WIDTH / max(len(values), 1)
    shapes = []
    for index, value in enumerate(values):
        height = round(value / peak * (HEIGHT - 20))
        x = round(index * step, 1)
        shapes.append(
            f'<rect x="{x}" y="{HEIGHT - height}" width="{max(step - 1, 1):.1f}" '
            f'height="{height}"><title>{value}</title></rect>'
        )
    label = escape(title)
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}">'
        f"<title>{label}</title>{''.join(shapes)}</svg>"
    )
