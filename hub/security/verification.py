"""Verifications are not oracles (issue 18, finding 2).

An operation declared `@operation(verification="match")` checks details a caller states
about a person against the national record (`population:verify`). Answered field by field,
with whether the ID exists, and at machine speed, it gives the record away: 114 calls in
0.3 s recovered a date of birth. So, for every such operation, the core:

- answers **one overall verdict** (the named field, `match`) unless the client's field
  grant for the service names more (`--fields population:match,found,fields`): the
  field-by-field result and the existence of the ID are disclosed only where granted;
- **throttles** it per client and per person, whatever the client's own rate limit:
  `HUB_VERIFY_PER_SUBJECT` verifications of one person by one client in
  `HUB_VERIFY_SUBJECT_WINDOW_S` (5 a day), and `HUB_VERIFY_PER_MINUTE` verifications by
  one client in any 60 s (120); past either, 429 `RATE_LIMITED` with `Retry-After`. The
  windows are the rate limiter's sliding windows, in Redis when `HUB_REDIS_URL` is set
  (every hub process shares them), in process memory otherwise; the person is keyed by
  the keyed pseudonym the logs use, never the personal ID in clear;
- **alerts** on enumeration patterns: a throttle reached, and `HUB_VERIFY_MISMATCH_ALERT`
  (3) no-match answers about one person to one client within the subject window. An alert
  is one WARNING log line (`verification alert`: client id, pattern, the person's
  pseudonym; nothing personal) and `hub_verify_alerts_total{client,pattern}`.

What it does not cover: many clients, each within its limits, working on one person
together (their alerts show it, the throttle does not stop it); and a client guessing
within its daily allowance (5 guesses a person a day).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hub.errors import RateLimited
from hub.security.ratelimit import RateLimiter

__all__ = ["VerificationGuard", "VerificationPolicy", "verification_fields"]

log = logging.getLogger("hub.verification")


def verification_fields(verdict: str, granted: Sequence[str] | None) -> tuple[str, ...]:
    """What a verification's answer is cut to: its verdict, and what the grant adds."""
    return (verdict, *(granted or ()))


@dataclass(frozen=True, slots=True)
class VerificationPolicy:
    """The throttles and the alert threshold (0 turns each off)."""

    per_subject: int = 5
    subject_window_s: float = 86_400.0
    per_minute: int = 120
    mismatch_alert: int = 3


class VerificationGuard:
    """Throttles verifications and raises alerts on enumeration patterns."""

    def __init__(
        self,
        limiter: RateLimiter,
        policy: VerificationPolicy,
        *,
        pseudonym: Callable[[str], str | None],
        on_alert: Callable[[str, str], None] | None = None,
    ) -> None:
        self.limiter, self.policy = limiter, policy
        self.pseudonym, self.on_alert = pseudonym, on_alert

    async def admit(self, client_id: str, subject: str | None) -> None:
        """Count one verification by `client_id` about `subject`; RateLimited past a
        throttle (an alert is raised too)."""
        policy = self.policy
        if policy.per_minute:
            wait = await self.limiter.take(f"verify:{client_id}", policy.per_minute, 60)
            if wait > 0:
                self._alert(client_id, "client-rate", subject)
                raise RateLimited(
                    f"this client may make {policy.per_minute} verifications a minute",
                    retry_after=_seconds(wait),
                )
        if policy.per_subject and subject:
            key = f"verify:{client_id}:{self.pseudonym(subject)}"
            wait = await self.limiter.take(key, policy.per_subject, policy.subject_window_s)
            if wait > 0:
                self._alert(client_id, "subject-repeat", subject)
                raise RateLimited(
                    "this client has verified this person as often as it may for now",
                    retry_after=_seconds(wait),
                )

    async def answered(self, client_id: str, subject: str | None, data: Any, verdict: str) -> None:
        """Note the verdict: a run of no-match answers about one person is an alert."""
        threshold = self.policy.mismatch_alert
        if not threshold or not subject or not isinstance(data, dict) or data.get(verdict):
            return
        key = f"verify-miss:{client_id}:{self.pseudonym(subject)}"
        # The log takes threshold - 1 misses; the next one (and each after) is refused: alert.
        if await self.limiter.take(key, threshold - 1, self.policy.subject_window_s) > 0:
            self._alert(client_id, "mismatches", subject)

    def _alert(self, client_id: str, pattern: str, subject: str | None) -> None:
        subject_psn = None if subject is None else self.pseudonym(subject)
        log.warning(
            "verification alert client=%s pattern=%s subject=%s",
            client_id,
            pattern,
            subject_psn,
            extra={"client": client_id, "pattern": pattern, "subject": subject_psn},
        )
        if self.on_alert is not None:
            self.on_alert(client_id, pattern)


def _seconds(wait: float) -> int:
    return max(1, int(wait) + (wait > int(wait)))
