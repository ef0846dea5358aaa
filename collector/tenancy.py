"""Which tenant a request belongs to. Until API keys exist (issue 3) every request
belongs to the single default tenant."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..storage.model import DEFAULT_TENANT

TenantResolver = Callable[[Mapping[str, str]], str]


def single_tenant(headers: Mapping[str, str]) -> str:
    return DEFAULT_TENANT
