"""What the judicial-records mock decides about an applicant, deterministically.

- An applicant unknown to the population data set, or whose name, birth date or gender
  disagree with it, is rejected (the real system checks the application against the
  National Population Database while processing it).
- About 5 % of adult citizens have convictions, chosen by hashing the personal ID: the same
  citizen has the same record in every run and every mock process. Convictions are
  synthetic (court, judgment number and date, offence under the 2015 Penal Code, sentence);
  some are expunged (`xoá án tích`).
- A type 1 certificate lists the convictions not expunged; a type 2 certificate lists all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hub.provinces import PROVINCES
from mocks.data import Address, Citizen
from mocks.judicial_records.pdf import ascii_fold

__all__ = [
    "CLEAN",
    "CONVICTED",
    "CONVICTION_SHARE",
    "EXPUNGED_ONLY",
    "Conviction",
    "Verdict",
    "address_text",
    "assess",
    "certificate_number",
    "convictions_of",
    "listed",
    "record_status",
    "sample_applicants",
]

#: Share of adult citizens with at least one conviction.
CONVICTION_SHARE = 0.05
#: `tinhTrangAnTich` values.
CLEAN = "Không có án tích"
CONVICTED = "Có án tích"
EXPUNGED_ONLY = "Đã được xoá án tích"

_LAST_JUDGMENT = dt.date(2024, 12, 31)
_CENTRAL_CITIES = frozenset({"001", "031", "048", "079", "092"})
_OFFENCES = (
    "Trộm cắp tài sản (Điều 173 Bộ luật Hình sự)",
    "Cố ý gây thương tích (Điều 134 Bộ luật Hình sự)",
    "Lừa đảo chiếm đoạt tài sản (Điều 174 Bộ luật Hình sự)",
    "Đánh bạc (Điều 321 Bộ luật Hình sự)",
    "Vi phạm quy định về tham gia giao thông đường bộ (Điều 260 Bộ luật Hình sự)",
    "Tàng trữ trái phép chất ma túy (Điều 249 Bộ luật Hình sự)",
    "Gây rối trật tự công cộng (Điều 318 Bộ luật Hình sự)",
)
_SENTENCES = (
    "06 tháng tù nhưng cho hưởng án treo, thời gian thử thách 12 tháng",
    "09 tháng tù",
    "01 năm 06 tháng tù",
    "02 năm tù",
    "Cải tạo không giam giữ 01 năm",
    "Phạt tiền 20.000.000 đồng",
)


@dataclass(frozen=True, slots=True)
class Conviction:
    """One synthetic judgment on a citizen's record."""

    court: str
    judgment_number: str
    judgment_date: dt.date
    offence: str
    sentence: str
    expunged: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of an application: a certificate, or a rejection with its reason."""

    issued: bool
    convictions: tuple[Conviction, ...] = ()
    rejection_reason: str | None = None


def _normalise(name: str) -> str:
    """NFC, case-folded, single-spaced: diacritics stay significant."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def assess(
    index: Mapping[str, Citizen],
    *,
    personal_id: str,
    full_name: str,
    date_of_birth: dt.date,
    gender: str,
) -> Verdict:
    """Check the applicant against the population data; issue or reject."""
    citizen = index.get(personal_id)
    if citizen is None:
        return Verdict(
            False, rejection_reason="Không tìm thấy thông tin công dân trong CSDLQG về dân cư"
        )
    agrees = (
        _normalise(full_name) == _normalise(citizen.full_name)
        and date_of_birth == citizen.date_of_birth
        and gender == citizen.gender
    )
    if not agrees:
        return Verdict(
            False,
            rejection_reason="Thông tin nhân thân trong tờ khai không khớp với CSDLQG về dân cư",
        )
    return Verdict(True, convictions_of(citizen))


def convictions_of(citizen: Citizen) -> tuple[Conviction, ...]:
    """The citizen's convictions (empty for most), oldest first."""
    digest = hashlib.sha256(b"lltp:" + citizen.personal_id.encode()).digest()
    if int.from_bytes(digest[:4]) / 2**32 >= CONVICTION_SHARE:
        return ()
    born = citizen.date_of_birth
    adult = dt.date(born.year + 18, born.month, min(born.day, 28))
    if adult >= _LAST_JUDGMENT:
        return ()
    rng = random.Random(digest)
    span = (_LAST_JUDGMENT - adult).days
    dates = sorted(
        adult + dt.timedelta(days=rng.randrange(span)) for _ in range(rng.choice((1, 1, 1, 2)))
    )
    court = _court(citizen.permanent_address.province_code)
    return tuple(
        Conviction(
            court=court,
            judgment_number=f"{rng.randint(12, 480)}/{when.year}/HS-ST",
            judgment_date=when,
            offence=_offence(rng.choice(_OFFENCES), when),
            sentence=rng.choice(_SENTENCES),
            expunged=when.year <= 2016 and rng.random() < 0.7,
        )
        for when in dates
    )


def _offence(text: str, when: dt.date) -> str:
    # The article numbers are the 2015 Penal Code's, in force from 2018.
    return text if when.year >= 2018 else text.partition(" (")[0]


def _court(province_code: str) -> str:
    kind = "thành phố" if province_code in _CENTRAL_CITIES else "tỉnh"
    return f"Tòa án nhân dân {kind} {PROVINCES.get(province_code, '')}".strip()


def listed(convictions: Iterable[Conviction], certificate_type: int) -> list[Conviction]:
    """The convictions a certificate of this type shows."""
    return [c for c in convictions if certificate_type == 2 or not c.expunged]


def record_status(convictions: Iterable[Conviction], certificate_type: int) -> str:
    """`tinhTrangAnTich` of a certificate of this type."""
    shown = listed(convictions, certificate_type)
    if any(not c.expunged for c in shown):
        return CONVICTED
    return EXPUNGED_ONLY if shown else CLEAN


def certificate_number(issued_on: dt.date, province_code: str, sequence: int) -> str:
    """`soPhieuLLTP`: YY + province initials + 4-digit office code + `/` + 5-digit sequence.

    The office code is `2` followed by the province code (Hà Nội 001 -> 2001), so a certificate
    issued in Hà Nội in 2025 is `25HN2001/00001`.
    """
    words = ascii_fold(PROVINCES.get(province_code, "X")).replace("-", " ").split()
    initials = "".join(word[0] for word in words).upper()
    return f"{issued_on:%y}{initials}2{province_code}/{sequence % 100_000:05d}"


def address_text(address: Address) -> str:
    """An address as the one line a form holds: detail, then the province."""
    province = PROVINCES.get(address.province_code, "")
    return ", ".join(part for part in (address.detail, province) if part)


def _applicant(citizen: Citizen, expected: str, **override: str) -> dict[str, str]:
    return {
        "personal_id": citizen.personal_id,
        "full_name": citizen.full_name,
        "gender": citizen.gender,
        "date_of_birth": citizen.date_of_birth.isoformat(),
        "permanent_address": address_text(citizen.permanent_address),
        "current_address": address_text(citizen.current_address),
        "expected": expected,
        **override,
    }


def sample_applicants(citizens: Iterable[Citizen], limit: int) -> list[dict[str, str]]:
    """Applicants for testers: one clean, one with convictions, one to be rejected, then more
    clean ones with every fifth convicted. Each is a ready `submit` input minus the
    certificate type and purpose, plus `expected` (clean | convictions | rejected)."""
    clean: list[Citizen] = []
    convicted: list[Citizen] = []
    for citizen in citizens:
        record = convictions_of(citizen)
        if any(not c.expunged for c in record):
            convicted.append(citizen)
        elif not record:
            clean.append(citizen)
        if len(clean) >= limit and len(convicted) >= limit // 5 + 1:
            break
    picked: list[dict[str, str]] = []
    if clean:
        wrong_birth = clean[0].date_of_birth + dt.timedelta(days=1)
        picked.append(_applicant(clean[0], "clean"))
        picked.append(_applicant(clean[0], "rejected", date_of_birth=wrong_birth.isoformat()))
    if convicted:
        picked.insert(1, _applicant(convicted[0], "convictions"))
    more_clean, more_convicted = iter(clean[1:]), iter(convicted[1:])
    while len(picked) < limit:
        kind = "convictions" if len(picked) % 5 == 4 else "clean"
        following = next(more_convicted if kind == "convictions" else more_clean, None)
        if following is None:
            break
        picked.append(_applicant(following, kind))
    return picked[:limit]
