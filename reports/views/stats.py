"""The coordinators' statistics: the dashboard, every table as CSV, and the yearly summary."""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from reports.lib.charts import bar_chart, line_chart
from reports.selectors.stats import Dashboard, stats_dashboard, stats_year_summary
from reports.services.stats import stats_export_record
from reports.stats_forms import StatsFilterForm
from reports.views.decorators import staff_view

EXPOSURE_TABLE = "analysts"
EXPORT_TABLES = (
    "periods",
    "periods_by_source",
    "periods_by_category",
    "sources",
    "categories",
    "verdicts",
    "countries",
    "providers",
    "hash_lists",
    "outcomes",
    "analysts",
)


def _charts(board: Dashboard) -> dict[str, str]:
    labels = [start.isoformat() for start, _c in board.series]
    counts = [c for _s, c in board.series]

    def pct(part: str, whole: str | tuple[str, ...]) -> list[float | None]:
        wholes = (whole,) if isinstance(whole, str) else whole
        result: list[float | None] = []
        for c in counts:
            total = sum(c[w] for w in wholes)
            result.append(round(100 * c[part] / total, 1) if total else None)
        return result

    return {
        "volume": bar_chart(
            "volume",
            _("Reports and URLs per period"),
            labels,
            [
                ("reports", _("Reports"), [c["reports"] for c in counts]),
                ("urls", _("URLs"), [c["sightings"] for c in counts]),
            ],
        ),
        "known": line_chart(
            "known",
            _("Known content and duplicates, share per period"),
            labels,
            [
                ("known", _("Known content"), pct("contents_known", "contents")),
                ("listed", _("On a hash list"), pct("contents_listed", "contents")),
                ("dup", _("Duplicate URLs"), pct("urls_duplicate", "sightings")),
            ],
        ),
        "ai": line_chart(
            "ai",
            _("AI-indicated content and analysts' virtual verdicts, share per period"),
            labels,
            [
                ("ai", _("AI-indicated (provenance)"), pct("contents_ai", "contents")),
                (
                    "virtual",
                    _("Judged AI-generated or drawn"),
                    pct("virtual_ai", ("virtual_ai", "virtual_drawn", "virtual_real", "virtual_unknown")),
                ),
                (
                    "real",
                    _("Judged real"),
                    pct("virtual_real", ("virtual_ai", "virtual_drawn", "virtual_real", "virtual_unknown")),
                ),
            ],
        ),
    }


@never_cache
@require_GET
@staff_view("view_statistics")
def dashboard(request: HttpRequest) -> HttpResponse:
    form = StatsFilterForm(request.GET or None)
    board = stats_dashboard(form.filters())
    sees_exposure = request.user.has_perm("reports.view_exposure")
    query = urlencode({name: request.GET[name] for name in form.fields if request.GET.get(name)})
    return render(
        request,
        "reports/stats/dashboard.html",
        {
            "form": form,
            "board": board,
            "f": board.figures,
            "t": board.totals,
            "charts": _charts(board),
            "query": query,
            # Who revealed how much is the exposure permission's, as on the exposure page.
            "export_tables": EXPORT_TABLES if sees_exposure else tuple(t for t in EXPORT_TABLES if t != EXPOSURE_TABLE),
            "sees_exposure": sees_exposure,
            "years": range(timezone.localdate().year, timezone.localdate().year - 5, -1),
        },
    )


def _csv(rows: list[dict[str, Any]], filename: str) -> HttpResponse:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@never_cache
@require_GET
@staff_view("view_statistics")
def export_table(request: HttpRequest, table: str) -> HttpResponse:
    """One dashboard table, with the dashboard's filters, as CSV (recorded in the audit trail)."""
    if table not in EXPORT_TABLES or (table == EXPOSURE_TABLE and not request.user.has_perm("reports.view_exposure")):
        raise Http404
    filters = StatsFilterForm(request.GET or None).filters()
    rows = stats_dashboard(filters).tables[table]
    stats_export_record(user=request.user, table=table, filters=filters, rows=len(rows))
    return _csv(rows, f"hotline-{table}-{filters.first}-{filters.last}.csv")


@never_cache
@require_GET
@staff_view("view_statistics")
def year_summary(request: HttpRequest, year: int, fmt: str) -> HttpResponse:
    """The figures an annual report needs, as JSON or as a two-column CSV."""
    if not 2000 <= year <= timezone.localdate().year or fmt not in ("csv", "json"):
        raise Http404
    summary = stats_year_summary(year)
    stats_export_record(user=request.user, table=f"year {year}", format=fmt)
    if fmt == "json":
        response = JsonResponse(summary, json_dumps_params={"indent": 2})
        response["Content-Disposition"] = f'attachment; filename="hotline-{year}.json"'
        return response
    rows = []
    for key, value in summary.items():
        if key == "months":
            continue
        if isinstance(value, dict):
            rows += [{"figure": f"{key}.{k}", "value": v} for k, v in value.items()]
        else:
            rows.append({"figure": key, "value": "" if value is None else value})
    for month in summary["months"]:
        rows += [{"figure": f"month.{month['period'][:7]}.{k}", "value": v} for k, v in month.items() if k != "period"]
    return _csv(rows, f"hotline-{year}.csv")
