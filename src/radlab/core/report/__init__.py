"""One self-contained HTML report per run: curves, tables and pictures, readable offline."""

from radlab.core.report.cases import CASES_FILE, CaseTable, confident_cases, read_case_table, write_case_table
from radlab.core.report.document import (
    Section,
    figure_html,
    gallery,
    image_html,
    paragraph,
    table_html,
)
from radlab.core.report.run_sections import (
    REPORT_FILE,
    case_gallery,
    classifier_sections,
    missing_cases,
    report_run,
    run_sections,
    write_report,
)

__all__ = [
    "CASES_FILE",
    "REPORT_FILE",
    "CaseTable",
    "Section",
    "case_gallery",
    "classifier_sections",
    "confident_cases",
    "figure_html",
    "gallery",
    "image_html",
    "missing_cases",
    "paragraph",
    "read_case_table",
    "report_run",
    "run_sections",
    "table_html",
    "write_case_table",
    "write_report",
]
