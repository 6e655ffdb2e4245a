"""Teams and their members: the queues of the communication centre and the ``team`` record scope."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from clientela.core import access
from clientela.core.access import Principal
from clientela.core.db import db
from clientela.core.errors import Conflict, Forbidden, NotFound, ValidationError
from clientela.core.models import User
from clientela.plugins.collaborative.collab_models import InboxItem, Team, TeamMember


def team_mates(user_id: uuid.UUID) -> list[uuid.UUID]:
    """Every user sharing at least one team with ``user_id`` (the user included if in one)."""
    mine = db.select(TeamMember.team_id).where(TeamMember.user_id == user_id)
    return list(db.session.execute(
        db.select(TeamMember.user_id).where(TeamMember.team_id.in_(mine)).distinct()
    ).scalars())


def team_ids_of(user_id: uuid.UUID) -> list[uuid.UUID]:
    return list(db.session.execute(
        db.select(TeamMember.team_id).where(TeamMember.user_id == user_id)).scalars())


def teams_query(principal: Principal):
    access.require(principal, "teams:read")
    return db.select(Team).order_by(Team.name, Team.id)


def get_team(team_id: uuid.UUID, principal: Principal) -> Team:
    access.require(principal, "teams:read")
    team = db.session.execute(db.select(Team).where(Team.id == team_id)).scalar_one_or_none()
    if team is None:
        raise NotFound("team not found")
    return team


def _unique_name(name: str, self_id: uuid.UUID | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ["a team needs a name"]})
    stmt = db.select(Team.id).where(sa.func.lower(Team.name) == name.lower())
    if self_id is not None:
        stmt = stmt.where(Team.id != self_id)
    if db.session.execute(stmt).first():
        raise Conflict(f"a team named '{name}' already exists")
    return name


def create_team(data: dict[str, Any], principal: Principal) -> Team:
    access.require(principal, "teams:write")
    team = Team(name=_unique_name(data.get("name", "")),
                description=data.get("description") or "")
    db.session.add(team)
    db.session.flush()
    for member in data.get("members") or []:
        add_member(team.id, member["user_id"], principal, is_lead=member.get("is_lead", False))
    return team


def update_team(team_id: uuid.UUID, data: dict[str, Any], principal: Principal) -> Team:
    team = get_team(team_id, principal)
    access.require(principal, "teams:write")
    if "name" in data:
        team.name = _unique_name(data["name"], self_id=team.id)
    if "description" in data:
        team.description = data["description"] or ""
    db.session.flush()
    return team


def delete_team(team_id: uuid.UUID, principal: Principal) -> None:
    """Delete a team; its queue's items stay, without a team."""
    team = get_team(team_id, principal)
    access.require(principal, "teams:write")
    db.session.execute(sa.update(InboxItem).where(InboxItem.team_id == team.id)
                       .values(team_id=None).execution_options(synchronize_session="fetch"))
    db.session.execute(sa.delete(TeamMember).where(TeamMember.team_id == team.id)
                       .execution_options(synchronize_session="fetch"))
    db.session.delete(team)
    db.session.flush()


def is_lead(team_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    return bool(db.session.execute(db.select(TeamMember.id).where(
        TeamMember.team_id == team_id, TeamMember.user_id == user_id,
        TeamMember.is_lead.is_(True))).first())


def _may_manage(team: Team, principal: Principal) -> None:
    """``teams:write``, or being a lead of this team."""
    if principal.can("teams:write") or is_lead(team.id, principal.user_id):
        return
    raise Forbidden("only a team's leads or holders of 'teams:write' manage its members")


def members(team_id: uuid.UUID, principal: Principal) -> list[dict[str, Any]]:
    team = get_team(team_id, principal)
    rows = db.session.execute(
        db.select(TeamMember, User).join(User, User.id == TeamMember.user_id)
        .where(TeamMember.team_id == team.id).order_by(User.email)
    ).all()
    return [member_data(m, u) for m, u in rows]


def member_data(member: TeamMember, user: User) -> dict[str, Any]:
    return {"user_id": user.id, "email": user.email, "name": user.name,
            "is_lead": member.is_lead, "added_at": member.created_at}


def _active_user(user_id: uuid.UUID, field: str = "user_id") -> User:
    user = db.session.execute(
        db.select(User).where(User.id == user_id, User.is_active.is_(True))).scalar_one_or_none()
    if user is None:
        raise ValidationError({field: ["no active user with this id"]})
    return user


def add_member(team_id: uuid.UUID, user_id: uuid.UUID, principal: Principal,
               is_lead: bool = False) -> dict[str, Any]:
    team = get_team(team_id, principal)
    _may_manage(team, principal)
    user = _active_user(user_id)
    existing = db.session.execute(db.select(TeamMember).where(
        TeamMember.team_id == team.id, TeamMember.user_id == user.id)).scalar_one_or_none()
    if existing is not None:
        raise Conflict(f"{user.email} is already a member of '{team.name}'")
    member = TeamMember(team_id=team.id, user_id=user.id, is_lead=bool(is_lead))
    db.session.add(member)
    db.session.flush()
    return member_data(member, user)


def _member(team: Team, user_id: uuid.UUID) -> TeamMember:
    member = db.session.execute(db.select(TeamMember).where(
        TeamMember.team_id == team.id, TeamMember.user_id == user_id)).scalar_one_or_none()
    if member is None:
        raise NotFound("no such member in this team")
    return member


def update_member(team_id: uuid.UUID, user_id: uuid.UUID, data: dict[str, Any],
                  principal: Principal) -> dict[str, Any]:
    team = get_team(team_id, principal)
    member = _member(team, user_id)
    _may_manage(team, principal)
    if "is_lead" in data:
        member.is_lead = bool(data["is_lead"])
    db.session.flush()
    return member_data(member, db.session.get(User, (member.tenant_id, member.user_id)))


def remove_member(team_id: uuid.UUID, user_id: uuid.UUID, principal: Principal) -> None:
    team = get_team(team_id, principal)
    member = _member(team, user_id)
    _may_manage(team, principal)
    db.session.delete(member)
    db.session.flush()


__all__ = ["add_member", "create_team", "delete_team", "get_team", "members", "remove_member",
           "team_ids_of", "team_mates", "teams_query", "update_member", "update_team"]
