"""Render a :class:`~memloss.reports.document.Report` as one self-contained HTML file.

The finding comes first: the headline sentence, then the decisive chart beside the table
of measured and paper numbers, all on the first screen of a 1366x768 window. Figures are
inline SVG, styles are inline CSS, there is no script and no external resource, so the
file opens anywhere, offline (the raw tables are CSV files in the folder beside it,
linked). The output depends only on the report's content (no timestamps), so the same
inputs give the same bytes.
"""
from __future__ import annotations

from html import escape

from .document import Attachment, Code, Figure, Headline, Report, Section, Table, Text
from .render import draw, figure_svg, formatted_rows, is_number, section_title

__all__ = ["render_html"]

_CSS = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;max-width:1320px;margin:.8em auto;
padding:0 1.2em;color:#1b1b1b;line-height:1.4;font-size:15px}
h1{font-size:1.45em;margin:0 0 .1em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;
margin-top:2em}h3{font-size:1.02em;margin:1.2em 0 .4em}
p.subtitle{color:#555;margin:0 0 .5em}
p.verdict{font-size:1.12em;margin:.3em 0 .6em;padding:.45em .7em;background:#f3f7fb;
border-left:4px solid #2c6fb7}
div.lead{display:grid;grid-template-columns:minmax(0,1.05fr) minmax(0,1fr);gap:1.2em;
align-items:start}
div.lead figure{margin:0}div.lead figure svg{width:100%;height:auto;max-height:430px}
div.lead h3{margin-top:0}
nav.toc{font-size:.9em;margin:1em 0;color:#444;display:flex;flex-wrap:wrap;gap:.2em .9em}
nav.toc a{white-space:nowrap}
div.scroll{overflow-x:auto;max-width:100%}
table.data{border-collapse:collapse;font-size:.84em;margin:.3em 0 .6em}
table.data th,table.data td{border:1px solid #d0d0d0;padding:.15em .5em;text-align:right}
table.data td{white-space:nowrap}
table.data th{background:#f2f2f2}table.data td.t{text-align:left}
table.data tbody tr:nth-child(even){background:#fafafa}
table.data tbody tr.hl{background:#fff6d8;font-weight:bold}
table.data td.flag{background:#ffd9cc;color:#7a1500}
table.data td.flag sup{font-weight:bold;margin-left:.15em}
ol.flags{font-size:.8em;color:#7a1500;margin:.2em 0 .8em;padding-left:1.6em}
figure{margin:.6em 0 1.4em}figure svg{max-width:100%;height:auto}
figcaption,p.caption{color:#444;font-size:.88em}
pre{background:#f6f6f6;border:1px solid #e0e0e0;padding:.6em;overflow:auto;font-size:.82em}
details summary{cursor:pointer;font-weight:bold;margin:.3em 0}
p.file{margin:.3em 0}
""".strip()


def _table(block: Table) -> str:
    header, rows = formatted_rows(block.frame)
    marks = block.flag_marks()
    out = [f"<h3>{escape(block.title)}</h3>"]
    if block.caption:
        out.append(f'<p class="caption">{escape(block.caption)}</p>')
    out.append('<div class="scroll"><table class="data"><thead><tr>')
    out.extend(f"<th>{escape(h)}</th>" for h in header)
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(rows):
        cells = []
        for col, c in zip(header, row):
            classes = [] if is_number(c) or not c else ["t"]
            mark = marks.get((i, col))
            note = ""
            if mark is not None:
                classes.append("flag")
                note = f"<sup>{mark}</sup>"
            cls = f' class="{" ".join(classes)}"' if classes else ""
            title = (f' title="{escape(block.flags[mark - 1].note)}"' if mark is not None else "")
            cells.append(f"<td{cls}{title}>{escape(c)}{note}</td>")
        tr = '<tr class="hl">' if i in block.highlight else "<tr>"
        out.append(f"{tr}{''.join(cells)}</tr>")
    out.append("</tbody></table></div>")
    if block.flags:
        out.append('<ol class="flags">' + "".join(f"<li>{escape(f.note)}</li>"
                                                  for f in block.flags) + "</ol>")
    return "\n".join(out)


def _paragraphs(text: str) -> str:
    paras = [p.strip() for p in text.split("\n\n") if p.strip()]
    return "\n".join(f"<p>{escape(' '.join(p.split()))}</p>" for p in paras)


def _figure(block: Figure, prefix: str, title: bool = True) -> str:
    svg = figure_svg(draw(block), prefix)
    cap = f"<figcaption>{escape(block.caption)}</figcaption>" if block.caption else ""
    head = f"<h3>{escape(block.title)}</h3>\n" if title else ""
    return f'<figure id="{prefix}">{head}{svg}\n{cap}</figure>'


def _block(block: object, prefix: str, data_folder: str) -> str:
    if isinstance(block, Text):
        return _paragraphs(block.text)
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return _figure(block, prefix)
    if isinstance(block, Code):
        return (f"<details><summary>{escape(block.title)}</summary>"
                f"<pre>{escape(block.text)}</pre></details>")
    if isinstance(block, Attachment):
        href = f"{data_folder}/{block.name}"
        cap = f": {escape(block.caption)}" if block.caption else ""
        return (f'<p class="file"><a href="{escape(href)}">{escape(href)}</a> &mdash; '
                f"{escape(block.title)}{cap} ({len(block.frame)} rows, CSV)</p>")
    raise ValueError(f"cannot render a {type(block).__name__} block; use Text, Table, Figure, "
                     "Code or Attachment")


def _section(section: Section, index: int, data_folder: str) -> str:
    parts = [f'<section id="{section.anchor}">', f"<h2>{escape(section_title(section))}</h2>"]
    for j, block in enumerate(section.blocks):
        parts.append(_block(block, f"f{index}-{j}", data_folder))
    parts.append("</section>")
    return "\n".join(parts)


def _headline(head: Headline) -> str:
    parts = ['<section id="finding" class="finding">',
             f'<p class="verdict">{escape(" ".join(head.text.split()))}</p>']
    side = []
    if head.figure is not None:
        side.append(f'<div>{_figure(head.figure, "lead-fig", title=False)}</div>')
    if head.table is not None:
        side.append(f"<div>{_table(head.table)}</div>")
    if side:
        parts.append('<div class="lead">' + "\n".join(side) + "</div>")
    parts.append("</section>")
    return "\n".join(parts)


def render_html(report: Report, *, data_folder: str = "report-data") -> str:
    """The report as an HTML document (a string); attachments are linked as
    ``data_folder/NAME``."""
    toc = "\n".join(f'<a href="#{s.anchor}">{escape(section_title(s))}</a>' for s in report.sections)
    sub = f'<p class="subtitle">{escape(report.subtitle)}</p>' if report.subtitle else ""
    lead = _headline(report.headline) if report.headline is not None else ""
    body = "\n".join(_section(s, i, data_folder) for i, s in enumerate(report.sections))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<link rel=\"icon\" href=\"data:,\">\n"
        f"<title>{escape(report.title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n<body>\n"
        f"<header><h1>{escape(report.title)}</h1>{sub}</header>\n{lead}\n"
        f'<nav class="toc"><strong>Contents:</strong> {toc}</nav>\n<main>\n{body}\n</main>\n'
        "</body>\n</html>\n"
    )
