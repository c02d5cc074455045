"""Render a :class:`~memloss.reports.document.Report` as one self-contained HTML file.

Figures are inline SVG, styles are inline CSS, there is no script and no external
resource, so the file opens anywhere, offline. The output depends only on the report's
content (no timestamps), so the same inputs give the same bytes.
"""
from __future__ import annotations

from html import escape

from .document import Code, Figure, Report, Section, Table, Text
from .render import draw, figure_svg, formatted_rows

__all__ = ["render_html"]

_CSS = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;max-width:1180px;margin:2em auto;
padding:0 1.2em;color:#1b1b1b;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;
margin-top:2.2em}h3{font-size:1.05em;margin:1.4em 0 .4em}
p.subtitle{color:#555;margin-top:0}nav ol{columns:2}
table.data{border-collapse:collapse;font-size:.86em;margin:.4em 0 1em}
table.data th,table.data td{border:1px solid #d0d0d0;padding:.2em .55em;text-align:right}
table.data th{background:#f2f2f2}table.data td.t{text-align:left}
table.data tbody tr:nth-child(even){background:#fafafa}
figure{margin:.6em 0 1.4em}figure svg{max-width:100%;height:auto}
figcaption,p.caption{color:#444;font-size:.9em}
pre{background:#f6f6f6;border:1px solid #e0e0e0;padding:.6em;overflow:auto;font-size:.82em}
details summary{cursor:pointer;font-weight:bold;margin:.3em 0}
""".strip()


def _is_number(text: str) -> bool:
    try:
        float(text.lstrip("<>").rstrip("%"))
        return True
    except ValueError:
        return False


def _table(block: Table) -> str:
    header, rows = formatted_rows(block.frame)
    out = [f"<h3>{escape(block.title)}</h3>"]
    if block.caption:
        out.append(f'<p class="caption">{escape(block.caption)}</p>')
    out.append('<table class="data"><thead><tr>')
    out.extend(f"<th>{escape(h)}</th>" for h in header)
    out.append("</tr></thead><tbody>")
    for row in rows:
        cells = "".join(f"<td>{escape(c)}</td>" if _is_number(c) or not c
                        else f'<td class="t">{escape(c)}</td>' for c in row)
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _paragraphs(text: str) -> str:
    paras = [p.strip() for p in text.split("\n\n") if p.strip()]
    return "\n".join(f"<p>{escape(' '.join(p.split()))}</p>" for p in paras)


def _block(block: object, prefix: str) -> str:
    if isinstance(block, Text):
        return _paragraphs(block.text)
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        svg = figure_svg(draw(block), prefix)
        cap = f"<figcaption>{escape(block.caption)}</figcaption>" if block.caption else ""
        return (f'<figure id="{prefix}"><h3>{escape(block.title)}</h3>\n{svg}\n{cap}</figure>')
    if isinstance(block, Code):
        return (f"<details><summary>{escape(block.title)}</summary>"
                f"<pre>{escape(block.text)}</pre></details>")
    raise ValueError(f"cannot render a {type(block).__name__} block; use Text, Table, Figure or Code")


def _section(section: Section, index: int) -> str:
    parts = [f'<section id="{section.anchor}">', f"<h2>{escape(section.title)}</h2>"]
    for j, block in enumerate(section.blocks):
        parts.append(_block(block, f"f{index}-{j}"))
    parts.append("</section>")
    return "\n".join(parts)


def render_html(report: Report) -> str:
    """The report as an HTML document (a string)."""
    toc = "".join(f'<li><a href="#{s.anchor}">{escape(s.title)}</a></li>' for s in report.sections)
    sub = f'<p class="subtitle">{escape(report.subtitle)}</p>' if report.subtitle else ""
    body = "\n".join(_section(s, i) for i, s in enumerate(report.sections))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<link rel=\"icon\" href=\"data:,\">\n"
        f"<title>{escape(report.title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n<body>\n"
        f"<header><h1>{escape(report.title)}</h1>{sub}</header>\n"
        f"<nav><h2>Contents</h2><ol>{toc}</ol></nav>\n<main>\n{body}\n</main>\n"
        "</body>\n</html>\n"
    )
