"""Field permissions: resolvers declare them instead of checking inline."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from gql.context import Info


class IsAuthenticated(BasePermission):
    message = "Authentication required: send 'Authorization: Bearer <token>'."
    error_extensions = {"code": "UNAUTHENTICATED"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.user_id is not None


# What every root field but none of the schema's introspection asks for.
AUTHENTICATED: list[type[BasePermission]] = [IsAuthenticated]
