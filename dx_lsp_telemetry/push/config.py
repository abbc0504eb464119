"""Where pushes go, and what in the configuration stops them."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from dx_lsp_telemetry.settings.instance_url import instance_url_fault, normalize_instance_url
from dx_lsp_telemetry.settings.problems import TOKEN_ENV as TOKEN_ENV  # named here by the callers
from dx_lsp_telemetry.settings.problems import (
    Namer,
    Problem,
    editor_name,
    fix,
    problem,
    setting,
)
from dx_lsp_telemetry.settings.settings import Settings

Destination = Literal["dx", "outbox", "off"]
#: what an HTTP header can carry of a bearer token: visible ASCII, no spaces
_TOKEN_TEXT = re.compile(r"[\x21-\x7e]+")


def destination_of(settings: Settings) -> Destination:
    if not settings.enabled:
        return "off"
    return "dx" if settings.instance_url else "outbox"


def journal_destination(settings: Settings) -> str:
    """The journal's name for a destination: one DX instance (however its URL is spelled), or
    the local outbox."""
    if not settings.instance_url:
        return "outbox"
    return f"dx:{normalize_instance_url(settings.instance_url)}"


def blocking_problems(
    settings: Settings, token: str | None, namer: Namer = editor_name
) -> list[str]:
    """What must be fixed before any day can be pushed (or written to the outbox), in the
    words of the front end that shows it."""
    return [p.render(namer) for p in push_problems(settings, token)]


def push_problems(settings: Settings, token: str | None) -> list[Problem]:
    problems: list[Problem] = []
    if not settings.email:
        problems.append(problem(setting("email"), " is not set: days cannot be pushed"))
    elif "@" not in settings.email:
        problems.append(
            problem(setting("email"), f' "{settings.email}" does not look like an email address')
        )
    if not settings.tool:
        problems.append(problem(setting("tool"), " is not set: days cannot be pushed"))
    if settings.instance_url:
        url_fault = instance_url_fault(settings.instance_url)
        if url_fault:
            problems.append(problem(setting("instanceUrl"), ": " + url_fault))
        if not token:
            problems.append(problem(setting("token"), " is not set: ", fix("token")))
        elif not _TOKEN_TEXT.fullmatch(token):
            problems.append(  # never quote the token itself
                problem(
                    setting("token"),
                    " holds a space, line break or non-ASCII character, so it cannot "
                    "be sent: set the token again",
                )
            )
    return problems


@dataclass(frozen=True)
class PushTarget:
    """Everything a push needs. The token lives only here, in memory."""

    destination: str
    email: str
    instance_url: str
    token: str | None

    @property
    def is_outbox(self) -> bool:
        return self.destination == "outbox"

    def fingerprint(self) -> str:
        """Changes whenever the token or the target changes (the pause after a 401 ends)."""
        material = "\0".join((self.destination, self.email, self.token or ""))
        return hashlib.sha256(material.encode()).hexdigest()


def push_target(settings: Settings, token: str | None) -> PushTarget:
    return PushTarget(journal_destination(settings), settings.email, settings.instance_url, token)
