"""The console's admin pages: statistics, announcements, the community model, clinic events, volunteer teams.

Only the roles in `scope.ADMIN_ROLES` see them; the pages call the same services as the CLI would.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List
from zoneinfo import ZoneInfo

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import messages
from bot.console.auth import current_staff, require_role
from bot.console.context import console_of
from bot.console.views import render
from bot.errors import InvalidInput
from bot import lifecycle as lc
from bot.services import announcements, clinic_edits, community_edits, stats, volunteers
from bot.services.clinics import STATUS_LABELS
from bot.services.scope import ADMIN_ROLES, FULL_PHONE_ROLES

DEFAULT_WEEKS = 8


def local_today(request: Request) -> dt.date:
    """Today in the community's time zone, by the console's clock."""
    console = console_of(request)
    return console.now().replace(tzinfo=dt.timezone.utc).astimezone(ZoneInfo(console.settings.timezone)).date()


def stats_period(request: Request) -> Dict[str, Any]:
    """The statistics period of a request's query (since, until, by), as the page and the API read it."""
    console = console_of(request)
    today = local_today(request)
    try:
        until = dt.date.fromisoformat(request.args.get("until") or today.isoformat())
        since = dt.date.fromisoformat(request.args.get("since")
                                      or (until - dt.timedelta(weeks=DEFAULT_WEEKS) + dt.timedelta(days=1)).isoformat())
    except ValueError:
        raise InvalidInput("dates look like 2026-11-30", field="since") from None
    return {"since": since, "until": until, "by": request.args.get("by") or "estate",
            "timezone": console.settings.timezone}


async def _rows(request: Request) -> List[stats.StatRow]:
    return await console_of(request).run(stats.ticket_stats, console_of(request).factory, **stats_period(request),
                                         staff=current_staff(request).key)


@require_role(*ADMIN_ROLES)
async def stats_page(request: Request) -> HTTPResponse:
    """GET /admin/stats: the table for a period, grouped by estate or grid, with the weekly chart."""
    period = stats_period(request)
    rows = await _rows(request)
    query = request.query_string
    return render(request, "admin_stats.html", rows=rows, period=period, query=query,
                  kind_labels=messages.KIND_LABELS)


@require_role(*ADMIN_ROLES)
async def stats_csv(request: Request) -> HTTPResponse:
    """GET /admin/stats.csv: the same table as CSV."""
    body = stats.to_csv(await _rows(request))
    return response.raw(body.encode("utf-8"), content_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="hongguanjia-stats.csv"'})


@require_role(*ADMIN_ROLES)
async def stats_chart(request: Request) -> HTTPResponse:
    """GET /admin/stats/weekly.svg: tickets per week and type (drawn on the server)."""
    from bot.console.charts import weekly_tickets_svg

    svg = await console_of(request).run(weekly_tickets_svg, stats.weekly_counts(await _rows(request)))
    return response.raw(svg, content_type="image/svg+xml")


@require_role(*ADMIN_ROLES)
async def announcements_page(request: Request) -> HTTPResponse:
    """GET /admin/announcements: what was sent and how many residents it reached, and the form for a new one."""
    console = console_of(request)
    me = current_staff(request)
    items = await console.run(announcements.overview, console.factory, me.key)
    return render(request, "admin_announcements.html", items=items, kinds=announcements.KINDS,
                  estates=await console.run(announcements.audience_choices, console.factory, me.key),
                  done=request.args.get("sent"))


def _audience(form: Any) -> List[Dict[str, Any]]:
    audience: List[Dict[str, Any]] = []
    for estate in form.getlist("estate") or []:
        raw = (form.get(f"buildings-{estate}") or "").replace("，", ",").strip()
        try:
            buildings = [int(part) for part in raw.split(",") if part.strip()]
        except ValueError:
            raise InvalidInput("楼号请写数字，用逗号分开，例如 3,4", field="buildings") from None
        audience.append({"estate": estate, "buildings": buildings})
    return audience


@require_role(*ADMIN_ROLES)
async def announcement_send(request: Request) -> HTTPResponse:
    """POST /admin/announcements: store the announcement and queue it for its residents at once."""
    console = console_of(request)
    me = current_staff(request)
    form = request.form
    announcement_id = await console.run(
        announcements.create, console.factory, me.key, kind=form.get("kind") or "", title=form.get("title") or "",
        body=form.get("body") or "", audience=_audience(form), now=console.now())
    queued = await console.run(announcements.send, console.factory, me.key, announcement_id, now=console.now())
    return response.redirect(f"/admin/announcements?sent={queued}", status=303)


@require_role(*ADMIN_ROLES)
async def volunteers_csv(request: Request) -> HTTPResponse:
    """GET /admin/volunteers.csv: every sign-up (phones masked unless an admin exports)."""
    console = console_of(request)
    body = await console.run(volunteers.signups_csv, console.factory, current_staff(request).key)
    return response.raw(body.encode("utf-8"), content_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="hongguanjia-volunteers.csv"'})


@require_role(*ADMIN_ROLES)
async def community_page(request: Request) -> HTTPResponse:
    """GET /admin/community: staff, groups and the duty roster, each editable; the latest changes below."""
    console = console_of(request)
    model = await console.run(community_edits.community_model, console.factory, current_staff(request).key)
    changes = await console.run(community_edits.history, console.factory, current_staff(request).key, 30)
    return render(request, "admin_community.html", model=model, changes=changes, roles=lc.ROLE_LABELS,
                  done=request.args.get("done"))


@require_role(*ADMIN_ROLES)
async def staff_save(request: Request, key: str) -> HTTPResponse:
    """POST /admin/community/staff/<key>: save one staff member's details."""
    console = console_of(request)
    form = request.form
    await console.run(community_edits.update_staff, console.factory, current_staff(request).key, key,
                      now=console.now(), name=form.get("name") or "", role=form.get("role") or "",
                      phone=form.get("phone") or None, wecom_userid=form.get("wecom_userid") or None,
                      on_duty=form.get("on_duty") == "1", active=form.get("active") == "1",
                      estates=form.getlist("estates") or [])
    return response.redirect("/admin/community?done=staff", status=303)


@require_role(*ADMIN_ROLES)
async def group_save(request: Request, key: str) -> HTTPResponse:
    """POST /admin/community/groups/<key>: rename a group or set its robot key (empty key: keep it)."""
    console = console_of(request)
    changes: Dict[str, Any] = {"name": request.form.get("name") or ""}
    if (request.form.get("webhook_key") or "").strip():
        changes["webhook_key"] = request.form.get("webhook_key")
    await console.run(community_edits.update_group, console.factory, current_staff(request).key, key,
                      now=console.now(), **changes)
    return response.redirect("/admin/community?done=group", status=303)


@require_role(*ADMIN_ROLES)
async def shift_add(request: Request) -> HTTPResponse:
    """POST /admin/community/roster: add a roster line."""
    console = console_of(request)
    form = request.form
    try:
        days = [int(d) for d in form.getlist("weekdays") or []]
    except ValueError:
        raise InvalidInput("weekdays are 1 to 7", field="weekdays") from None
    await console.run(community_edits.add_shift, console.factory, current_staff(request).key, form.get("staff") or "",
                      days, form.get("start") or "", form.get("end") or "", form.get("note"), console.now())
    return response.redirect("/admin/community?done=roster", status=303)


@require_role(*ADMIN_ROLES)
async def shift_remove(request: Request, shift_id: int) -> HTTPResponse:
    """POST /admin/community/roster/<id>/delete: remove a roster line."""
    console = console_of(request)
    await console.run(community_edits.remove_shift, console.factory, current_staff(request).key, shift_id,
                      console.now())
    return response.redirect("/admin/community?done=roster", status=303)


@require_role(*ADMIN_ROLES)
async def layout_page(request: Request) -> HTTPResponse:
    """GET /admin/community/layout: estates (aliases, layout, buildings) and grids (name, leader, members)."""
    console = console_of(request)
    model = await console.run(community_edits.layout_model, console.factory, current_staff(request).key)
    changes = await console.run(community_edits.history, console.factory, current_staff(request).key, 30,
                              ("estate", "building", "grid"))
    return render(request, "admin_layout.html", model=model, changes=changes, done=request.args.get("done"))


@require_role(*ADMIN_ROLES)
async def estate_save(request: Request) -> HTTPResponse:
    """POST /admin/community/estates: save an estate's aliases and layout (form field `estate` names it)."""
    console = console_of(request)
    form = request.form
    await console.run(community_edits.update_estate, console.factory, current_staff(request).key,
                      form.get("estate") or "", now=console.now(), aliases=form.get("aliases") or "",
                      units=form.get("units"), floors=form.get("floors"), rooms_per_floor=form.get("rooms_per_floor"))
    return response.redirect("/admin/community/layout?done=estate", status=303)


@require_role(*ADMIN_ROLES)
async def building_add(request: Request) -> HTTPResponse:
    """POST /admin/community/buildings: add a building number to an estate (optionally in a grid)."""
    console = console_of(request)
    form = request.form
    await console.run(community_edits.add_building, console.factory, current_staff(request).key,
                      form.get("estate") or "", form.get("number"), form.get("grid") or None, now=console.now())
    return response.redirect("/admin/community/layout?done=building", status=303)


@require_role(*ADMIN_ROLES)
async def building_move(request: Request) -> HTTPResponse:
    """POST /admin/community/buildings/move: put a building into another grid."""
    console = console_of(request)
    form = request.form
    await console.run(community_edits.move_building, console.factory, current_staff(request).key,
                      form.get("estate") or "", form.get("number"), form.get("grid") or "", now=console.now())
    return response.redirect("/admin/community/layout?done=building", status=303)


@require_role(*ADMIN_ROLES)
async def grid_save(request: Request, key: str) -> HTTPResponse:
    """POST /admin/community/grids/<key>: save a grid's name, leader and members."""
    console = console_of(request)
    form = request.form
    await console.run(community_edits.update_grid, console.factory, current_staff(request).key, key,
                      now=console.now(), name=form.get("name") or "", leader=form.get("leader") or "",
                      members=form.getlist("members") or [])
    return response.redirect("/admin/community/layout?done=grid", status=303)


def _clinic_form(form: Any) -> Dict[str, Any]:
    return {name: form.get(name) or "" for name in clinic_edits.FIELDS}


@require_role(*ADMIN_ROLES)
async def clinics_page(request: Request) -> HTTPResponse:
    """GET /admin/clinics: upcoming and recent clinic events, each editable, and the form for a new one."""
    console = console_of(request)
    items = await console.run(clinic_edits.listing, console.factory, current_staff(request).key,
                             local_today(request))
    return render(request, "admin_clinics.html", items=items, today=local_today(request).isoformat(),
                  statuses=STATUS_LABELS, done=request.args.get("done"))


@require_role(*ADMIN_ROLES)
async def clinic_add(request: Request) -> HTTPResponse:
    """POST /admin/clinics: add a clinic event."""
    console = console_of(request)
    await console.run(clinic_edits.create, console.factory, current_staff(request).key, _clinic_form(request.form),
                      console.now())
    return response.redirect("/admin/clinics?done=added", status=303)


@require_role(*ADMIN_ROLES)
async def clinic_save(request: Request, clinic_id: int) -> HTTPResponse:
    """POST /admin/clinics/<id>: save a clinic event's details."""
    console = console_of(request)
    await console.run(clinic_edits.update, console.factory, current_staff(request).key, clinic_id,
                      _clinic_form(request.form), console.now())
    return response.redirect("/admin/clinics?done=saved", status=303)


@require_role(*ADMIN_ROLES)
async def clinic_cancel(request: Request, clinic_id: int) -> HTTPResponse:
    """POST /admin/clinics/<id>/cancel: cancel a clinic event (residents are no longer offered it)."""
    console = console_of(request)
    await console.run(clinic_edits.cancel, console.factory, current_staff(request).key, clinic_id, console.now())
    return response.redirect("/admin/clinics?done=cancelled", status=303)


@require_role(*ADMIN_ROLES)
async def clinic_delete(request: Request, clinic_id: int) -> HTTPResponse:
    """POST /admin/clinics/<id>/delete: delete a clinic event."""
    console = console_of(request)
    await console.run(clinic_edits.delete, console.factory, current_staff(request).key, clinic_id, console.now())
    return response.redirect("/admin/clinics?done=deleted", status=303)


@require_role(*ADMIN_ROLES)
async def volunteers_page(request: Request) -> HTTPResponse:
    """GET /admin/volunteers: each team with its lead, group and sign-ups (phones as the CSV export shows them)."""
    console = console_of(request)
    me = current_staff(request)
    role = me.role
    teams = await console.run(volunteers.roster, console.factory, me.key)
    return render(request, "admin_volunteers.html", teams=teams, full_phones=role in FULL_PHONE_ROLES)


def register_admin(app: Sanic) -> None:
    """Add the admin pages to the console app."""
    app.add_route(stats_page, "/admin/stats", methods=["GET"], name="admin_stats")
    app.add_route(stats_csv, "/admin/stats.csv", methods=["GET"], name="admin_stats_csv")
    app.add_route(stats_chart, "/admin/stats/weekly.svg", methods=["GET"], name="admin_stats_chart")
    app.add_route(announcements_page, "/admin/announcements", methods=["GET"], name="admin_announcements")
    app.add_route(announcement_send, "/admin/announcements", methods=["POST"], name="admin_announcement_send")
    app.add_route(volunteers_csv, "/admin/volunteers.csv", methods=["GET"], name="admin_volunteers_csv")
    app.add_route(community_page, "/admin/community", methods=["GET"], name="admin_community")
    app.add_route(staff_save, "/admin/community/staff/<key>", methods=["POST"], name="admin_staff_save")
    app.add_route(group_save, "/admin/community/groups/<key>", methods=["POST"], name="admin_group_save")
    app.add_route(shift_add, "/admin/community/roster", methods=["POST"], name="admin_shift_add")
    app.add_route(shift_remove, "/admin/community/roster/<shift_id:int>/delete", methods=["POST"],
                  name="admin_shift_remove")
    app.add_route(layout_page, "/admin/community/layout", methods=["GET"], name="admin_layout")
    app.add_route(estate_save, "/admin/community/estates", methods=["POST"], name="admin_estate_save")
    app.add_route(building_add, "/admin/community/buildings", methods=["POST"], name="admin_building_add")
    app.add_route(building_move, "/admin/community/buildings/move", methods=["POST"], name="admin_building_move")
    app.add_route(grid_save, "/admin/community/grids/<key>", methods=["POST"], name="admin_grid_save")
    app.add_route(clinics_page, "/admin/clinics", methods=["GET"], name="admin_clinics")
    app.add_route(clinic_add, "/admin/clinics", methods=["POST"], name="admin_clinic_add")
    app.add_route(clinic_save, "/admin/clinics/<clinic_id:int>", methods=["POST"], name="admin_clinic_save")
    app.add_route(clinic_cancel, "/admin/clinics/<clinic_id:int>/cancel", methods=["POST"], name="admin_clinic_cancel")
    app.add_route(clinic_delete, "/admin/clinics/<clinic_id:int>/delete", methods=["POST"], name="admin_clinic_delete")
    app.add_route(volunteers_page, "/admin/volunteers", methods=["GET"], name="admin_volunteers")
