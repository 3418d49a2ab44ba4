"""Admin pages: sign-in, environments, a bot's Agent transfers settings, analytics (and its CSV).

Pages are server-rendered; the Agent transfers tile's JavaScript (``static/admin.js``) drives the
connection through the JSON API. The same strict Content-Security-Policy as the workspace applies:
our own scripts and styles only; charts are inline SVG drawn on the server.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from warmline.admin import reads
from warmline.admin.access import (
    ADMIN_COOKIE,
    LIFETIME,
    Caller,
    change_allowed,
    identify,
    issue_admin_session,
    token_matches,
)
from warmline.admin.actions import AdminError, do_save_environment
from warmline.admin.model import INSTALL_ORDER, VOICE_GEOGRAPHIES, Geography
from warmline.analytics.charts import Bar, bar_chart, duration, percent
from warmline.analytics.metrics import AnalyticsReport
from warmline.analytics.reads import read_analytics
from warmline.runtime import Runtime, get_runtime
from warmline.workspace.session import SUPERVISOR_ROLES, cookie_secure, same_origin

STATIC = Path(__file__).with_name("static")
templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
templates.env.filters["percent"] = percent
templates.env.filters["duration"] = duration
router = APIRouter(tags=["Administration pages"], include_in_schema=False)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
ANALYTICS_ROLES = SUPERVISOR_ROLES


def _page(
    request: Request, name: str, context: dict[str, object], status: int = 200, caller: Caller | None = None
) -> HTMLResponse:
    context = {"caller": caller, "csrf": caller.csrf if caller else None, **context}
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def _filename(text: str) -> str:
    """A download name with nothing a header could choke on."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:100]


def _safe_next(value: str | None) -> str:
    """Only our own admin pages: never an absolute or protocol-relative URL (no open redirect)."""
    if value and value.startswith("/admin") and not value.startswith("//") and "\\" not in value:
        return value
    return "/admin/environments"


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/admin/login?next={quote(target)}", status_code=303)


def _message(
    request: Request, title: str, text: str, status: int, caller: Caller | None = None
) -> HTMLResponse:
    return _page(request, "message.html", {"title": title, "text": text}, status, caller)


# --- sign-in ---------------------------------------------------------------------------------------


@router.get("/admin", response_class=HTMLResponse)
async def admin_home() -> Response:
    """The admin area starts at the environments."""
    return RedirectResponse("/admin/environments", status_code=303)


@router.get("/admin/login", response_class=HTMLResponse)
async def login_page(
    request: Request, next: str | None = None, runtime: Runtime = Depends(get_runtime)
) -> Response:
    """Sign in with the admin token (or go on when already signed in)."""
    if await identify(request, runtime) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    context = {"next": _safe_next(next), "enabled": runtime.settings.admin_token is not None, "error": None}
    return _page(request, "login.html", context)


@router.post("/admin/login", response_class=HTMLResponse)
async def login(
    request: Request,
    token: str = Form(default="", max_length=500),
    next: str = Form(default=""),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Check the admin token and keep a signed session cookie (the token itself is not stored)."""
    settings = runtime.settings
    if not same_origin(request, settings):
        return _message(request, "Refused", "Sign in from this site.", 403)
    if not token_matches(settings, token):
        context = {
            "next": _safe_next(next),
            "enabled": settings.admin_token is not None,
            "error": "That is not the admin token (WARMLINE_ADMIN_TOKEN).",
        }
        return _page(request, "login.html", context, status=401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        ADMIN_COOKIE,
        issue_admin_session(settings, runtime.clock()),
        max_age=int(LIFETIME.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=cookie_secure(settings),
        path="/",
    )
    return response


@router.post("/admin/logout")
async def logout(
    request: Request, csrf: str = Form(default=""), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """Forget the admin session cookie."""
    caller = await identify(request, runtime)
    if caller is not None and not change_allowed(request, runtime.settings, caller, csrf):
        return _message(request, "Refused", "Reload the page and try again.", 403, caller)
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(
        ADMIN_COOKIE, path="/", httponly=True, samesite="strict", secure=cookie_secure(runtime.settings)
    )
    return response


# --- environments ----------------------------------------------------------------------------------


async def _environments_page(
    request: Request, runtime: Runtime, caller: Caller, error: str | None = None, status: int = 200
) -> HTMLResponse:
    async with runtime.db.reading() as session:
        environments = await reads.list_environments(session)
        bots = await reads.list_bots(session)
    context: dict[str, object] = {
        "environments": environments,
        "bots": bots,
        "geographies": [g.value for g in Geography],
        "voice_geographies": sorted(g.value for g in VOICE_GEOGRAPHIES),
        "error": error,
    }
    return _page(request, "environments.html", context, status, caller)


@router.get("/admin/environments", response_class=HTMLResponse)
async def environments(request: Request, runtime: Runtime = Depends(get_runtime)) -> Response:
    """Environments (with a form to create one) and bots."""
    caller = await identify(request, runtime)
    if caller is None:
        return _to_login(request)
    return await _environments_page(request, runtime, caller)


@router.post("/admin/environments", response_class=HTMLResponse)
async def create_environment(
    request: Request,
    id: str = Form(default="", max_length=64),
    name: str = Form(default="", max_length=200),
    geography: str = Form(default=""),
    omnichannel: str | None = Form(default=None),
    csrf: str = Form(default=""),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Create or update an environment from the form."""
    caller = await identify(request, runtime)
    if caller is None:
        return _to_login(request)
    if not change_allowed(request, runtime.settings, caller, csrf):
        return _message(request, "Refused", "Reload the page and try again.", 403, caller)
    environment_id = id.strip()
    if not environment_id or not all(c.isalnum() or c in "-_" for c in environment_id):
        return await _environments_page(
            request, runtime, caller, "The id is letters, digits, '-' and '_' only.", 400
        )
    try:
        where = Geography(geography)
    except ValueError:
        return await _environments_page(request, runtime, caller, f"Unknown geography '{geography}'.", 400)
    try:
        async with runtime.db.transaction() as tx:
            await do_save_environment(
                tx,
                caller.actor,
                environment_id,
                name.strip() or environment_id,
                where,
                bool(omnichannel),
                runtime.clock(),
            )
    except AdminError as error:
        return await _environments_page(request, runtime, caller, error.message, error.status)
    return RedirectResponse("/admin/environments", status_code=303)


@router.get("/admin/environments/{env}", response_class=HTMLResponse)
async def environment_details(
    env: str, request: Request, runtime: Runtime = Depends(get_runtime)
) -> Response:
    """One environment as its omnichannel admin sees it: extensions, application users, workstreams."""
    caller = await identify(request, runtime)
    if caller is None:
        return _to_login(request)
    async with runtime.db.reading() as session:
        found = [e for e in await reads.list_environments(session) if e.id == env]
        users = await reads.list_application_users(session, env)
        workstreams = {u["bot"]: await reads.bot_workstreams(session, env, u["bot"]) for u in users}
    if not found:
        return _message(request, "Not found", f"No environment '{env}'.", 404, caller)
    context: dict[str, object] = {
        "environment": found[0],
        "users": users,
        "workstreams": workstreams,
        "order": INSTALL_ORDER,
    }
    return _page(request, "environment.html", context, caller=caller)


# --- a bot's Agent transfers ------------------------------------------------------------------------


@router.get("/admin/bots/{bot}/agent-transfers", response_class=HTMLResponse)
async def agent_transfers(bot: str, request: Request, runtime: Runtime = Depends(get_runtime)) -> Response:
    """Settings → Agent transfers: the Omnichannel tile and voice."""
    caller = await identify(request, runtime)
    if caller is None:
        return _to_login(request)
    async with runtime.db.reading() as session:
        view = await reads.get_agent_transfers(session, bot)
    if view is None:
        return _message(
            request, "Not found", f"No bot '{bot}'; publish it first (warmline bot publish).", 404, caller
        )
    context: dict[str, object] = {
        "view": view,
        "voice_geographies": sorted(g.value for g in VOICE_GEOGRAPHIES),
    }
    return _page(request, "agent_transfers.html", context, caller=caller)


# --- analytics ---------------------------------------------------------------------------------------


def _charts(report: AnalyticsReport) -> dict[str, Markup]:
    total = report.total
    charts = {
        "outcomes": bar_chart(
            "Session outcomes (share of sessions)",
            [
                Bar("Engagement", total.engagement_rate or 0.0, percent(total.engagement_rate)),
                Bar("Resolution", total.resolution_rate or 0.0, percent(total.resolution_rate)),
                Bar("Escalation", total.escalation_rate or 0.0, percent(total.escalation_rate)),
                Bar("Abandon", total.abandon_rate or 0.0, percent(total.abandon_rate)),
            ],
            maximum=1.0,
            chart_id="chart-outcomes",
        ),
        "topics": bar_chart(
            "Escalations by topic",
            [Bar(topic, count, str(count)) for topic, count in total.escalation_by_topic.items()],
            chart_id="chart-topics",
        ),
        "csat": bar_chart(
            "CSAT average (1 to 5)",
            [
                Bar(
                    "CSAT",
                    total.csat_average or 0.0,
                    f"{total.csat_average:.2f}".rstrip("0").rstrip(".") if total.csat_average else "-",
                )
            ],
            maximum=5.0,
            chart_id="chart-csat",
        ),
    }
    if report.queues is not None:
        charts["waits"] = bar_chart(
            "Average waiting time per queue (seconds)",
            [Bar(q.queue, q.average_wait or 0.0, duration(q.average_wait)) for q in report.queues],
            chart_id="chart-waits",
        )
        charts["handles"] = bar_chart(
            "Average handle time per queue (seconds)",
            [Bar(q.queue, q.average_handle or 0.0, duration(q.average_handle)) for q in report.queues],
            chart_id="chart-handles",
        )
    # Every label and value was escaped by bar_chart; the SVG itself is ours.
    return {name: Markup(svg) for name, svg in charts.items()}


async def _analytics_caller(request: Request, runtime: Runtime) -> tuple[Caller | None, Response | None]:
    caller = await identify(request, runtime)
    if caller is None:
        return None, _to_login(request)
    if not ANALYTICS_ROLES.intersection(caller.actor.roles):
        text = "Analytics needs the supervisor or administrator role; you have: " + (
            ", ".join(caller.actor.roles) or "none"
        )
        return caller, _message(request, "Not allowed", text, 403, caller)
    return caller, None


@router.get("/admin/analytics", response_class=HTMLResponse)
async def analytics(
    request: Request,
    environment: str | None = Query(default=None, max_length=64),
    bot: str | None = Query(default=None, max_length=64),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Bot and queue analytics with charts."""
    caller, refused = await _analytics_caller(request, runtime)
    if refused is not None:
        return refused
    async with runtime.db.reading() as session:
        environments = await reads.list_environments(session)
        bots = await reads.list_bots(session)
        chosen = environment or (environments[0].id if environments else None)
        report = await read_analytics(session, chosen, bot or None) if chosen else None
    context: dict[str, object] = {
        "environments": environments,
        "bots": bots,
        "environment": chosen,
        "bot": bot or "",
        "report": report,
        "charts": _charts(report) if report else {},
    }
    return _page(request, "analytics.html", context, caller=caller)


@router.get("/admin/analytics.csv")
async def analytics_csv(
    request: Request,
    environment: str = Query(min_length=1, max_length=64),
    bot: str | None = Query(default=None, max_length=64),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """The analytics report as CSV (scope, name, metric, value)."""
    _, refused = await _analytics_caller(request, runtime)
    if refused is not None:
        return refused
    async with runtime.db.reading() as session:
        report = await read_analytics(session, environment, bot or None)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(report.csv_rows())
    name = _filename(f"warmline-analytics-{environment}" + (f"-{bot}" if bot else "")) + ".csv"
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
