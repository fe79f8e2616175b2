"""Per-request context: the caller and the process-wide services, typed for resolvers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import strawberry
from strawberry.fastapi import BaseContext

from gql.assets.repository import AssetRepository
from gql.auth.tokens import Authenticator
from gql.jobs.resume import JobStreams
from gql.jobs.service import JobService
from gql.tracking.waiting_room import WaitingRoom


@dataclass(frozen=True, kw_only=True)
class Services:
    """Made once in the app's lifespan; shared by every request."""

    jobs: JobService
    streams: JobStreams
    authenticator: Authenticator
    assets: AssetRepository
    waiting: WaitingRoom


class Context(BaseContext):
    def __init__(self, services: Services, user_id: str | None) -> None:
        super().__init__()
        self.services = services
        # Over websockets this is set from `connection_init` (see GraphQLEndpoint).
        self.user_id = user_id
        self.connection_params: Any | None = None
        # The user whose connection slot this websocket holds (see UserConnections).
        self.connection_slot: str | None = None
        # When the change a subscription is about to yield was written (for the
        # push-latency metric); None for a first, current state.
        self.change_written_at: datetime | None = None
        # The job a subscription is about to yield, and whether it only refreshes
        # one sent before (its queue position or estimate moved).
        self.result_job_id: str | None = None
        self.result_final = False
        self.refresh = False
        # The change cursor of the result about to be yielded (an SSE event's `id`).
        self.result_cursor: str | None = None
        # An SSE client's `Last-Event-ID`: where a subscription resumes (its `since`).
        self.resume_from: str | None = None


Info = strawberry.Info[Context, None]


def current_user(info: Info) -> str:
    user_id = info.context.user_id
    assert user_id is not None, "resolvers that call this are guarded by IsAuthenticated"
    return user_id
