"""check's report is a page of explain's document model, printed by explain's renderers.

The references are written out by hand: the Markdown table a ``Marks`` block must give,
and the marks of the seed worksheet the report must carry (docs/check.md's counts).
"""

from __future__ import annotations

from glassnet.check import check_worksheet
from glassnet.check.report import sections, to_html, to_markdown
from glassnet.explain.document import Marks, Para
from glassnet.explain.render_html import CSS, block_html
from glassnet.explain.render_markdown import block_markdown


def _marks() -> Marks:
    return Marks(
        ("quantity", "given", "verdict"),
        [("z1[0]", "1.35", "ok"), ("a|b", "<0.2>", "wrong")],
        ["ok", "wrong"],
    )


def test_marks_in_markdown():
    # a pipe in a cell is escaped; the number as written (column 1) is bold when wrong
    assert block_markdown(_marks()) == (
        "| quantity | given | verdict |\n"
        "|---|---|---|\n"
        "| z1[0] | 1.35 | ok |\n"
        "| a\\|b | **<0.2>** | wrong |"
    )


def test_marks_in_html():
    html = block_html(_marks())
    assert "<tr class='ok'><td>z1[0]</td><td>1.35</td><td>ok</td></tr>" in html
    assert "<tr class='wrong'><td>a|b</td><td>&lt;0.2&gt;</td><td>wrong</td></tr>" in html
    assert "<th>quantity</th><th>given</th><th>verdict</th>" in html


def test_the_report_is_built_from_document_blocks():
    report = check_worksheet("seed")
    top, wrong, every = sections(report)
    assert top.title.startswith("Marked worksheet") and top.level == 1
    assert all(isinstance(b, Para) for b in top.blocks)
    assert wrong.title == "Errata (wrong numbers)"
    (table,) = every.blocks
    assert isinstance(table, Marks) and len(table.rows) == len(report.entries) == 226
    assert table.verdicts.count("wrong") == 44 and table.verdicts.count("follows") == 66
    (errata,) = wrong.blocks
    assert isinstance(errata, Marks) and set(errata.verdicts) == {"wrong"}


def test_the_report_pages_are_explains():
    report = check_worksheet("seed")
    page = to_html(report)
    assert CSS in page  # explain's page stylesheet, not a second one
    assert page.count("<tr class='wrong'>") == 2 * 44  # errata table and every number
    md = to_markdown(report)
    assert md.startswith("# Marked worksheet: ")
    assert md.count("| **") == 2 * 44
