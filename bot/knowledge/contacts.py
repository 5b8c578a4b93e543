"""The contact registry (`knowledge/contacts.yml`) and opening hours in Europe/London.

Hours come in three kinds: "24/7", "unknown" (we never guess), or a weekly table
`{mon: ["09:00-17:00"], ..., sun: []}`. A range may run past midnight ("22:00-02:00")
and "24:00" means the end of the day. The advice line's hours arrive as one setting
string instead ("mon-fri 10:00-16:00; wed 18:00-20:00"); `parse_hours_spec` reads that.

Every time is London time: a datetime with another zone is converted, and a naive one
is taken to be London local time already.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from bot.knowledge.articles import ALLOWED_NATIONS, as_date, load_yaml_strict

LONDON = ZoneInfo("Europe/London")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MINUTES_PER_DAY = 24 * 60
# Numbers anyone in the UK may be told without a registry entry: emergency, police
# non-emergency, NHS 111, the silent-999 "55" and text relay.
UNIVERSAL_NUMBERS = frozenset({"999", "101", "111", "55", "18000"})
EMERGENCY_NUMBERS = frozenset({"999", "112"})

_NUMBER = re.compile(r"\+?\d(?:[ \-]?\d)*")
SHORT_TEXT = 40  # longest `text` wording that fits in a one-line description
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


class HoursError(ValueError):
    """Opening hours that cannot be read."""


def to_london(moment: datetime) -> datetime:
    """`moment` as London time (naive datetimes are taken to be London time already)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=LONDON)
    return moment.astimezone(LONDON)


def digits(text: str) -> str:
    return re.sub(r"\D", "", text or "")


# --- Opening hours ---------------------------------------------------------------------


@dataclass(frozen=True)
class OpeningHours:
    """kind is "always", "unknown" or "weekly". `weekly[day]` holds (start, end) minutes
    after that day's midnight, Monday first; `end` may pass 1440 when a range runs
    overnight."""

    kind: str = "unknown"
    weekly: tuple[tuple[tuple[int, int], ...], ...] = ((),) * 7

    @property
    def known(self) -> bool:
        return self.kind != "unknown"

    @property
    def is_24_7(self) -> bool:
        if self.kind == "always":
            return True
        return self.kind == "weekly" and all(
            any(start == 0 and end >= MINUTES_PER_DAY for start, end in day) for day in self.weekly
        )

    def _current_range(self, local: datetime) -> tuple[datetime, datetime] | None:
        """The (opened, closes) of the range open at `local`, if any."""
        minute = local.hour * 60 + local.minute
        today = local.weekday()
        # Today's ranges, then yesterday's ranges that run past midnight into today.
        for day_offset, shift in ((0, 0), (-1, MINUTES_PER_DAY)):
            for start, end in self.weekly[(today + day_offset) % 7]:
                if start <= minute + shift < end:
                    midnight = datetime.combine(local.date() + timedelta(days=day_offset), time())
                    return (
                        (midnight + timedelta(minutes=start)).replace(tzinfo=LONDON),
                        (midnight + timedelta(minutes=end)).replace(tzinfo=LONDON),
                    )
        return None

    def is_open(self, now: datetime) -> bool | None:
        if self.kind == "unknown":
            return None
        if self.kind == "always":
            return True
        return self._current_range(to_london(now)) is not None

    def closes_at(self, now: datetime) -> datetime | None:
        """When the range open now ends (None when closed, 24/7 or unknown)."""
        if self.kind != "weekly" or self.is_24_7:
            return None
        current = self._current_range(to_london(now))
        return current[1] if current else None

    def next_opening(self, now: datetime) -> datetime | None:
        """`now` (in London) when open now; else the start of the next opening within a
        week; None when the hours are unknown or there is no opening at all."""
        if self.kind == "unknown":
            return None
        local = to_london(now)
        if self.is_open(local):
            return local
        for day_offset in range(8):
            day = local.date() + timedelta(days=day_offset)
            for start, _ in sorted(self.weekly[day.weekday()]):
                opening = datetime.combine(day, time()) + timedelta(minutes=start)
                opening = opening.replace(tzinfo=LONDON)
                if opening > local:
                    return opening
        return None

    def status_text(self, now: datetime) -> str | None:
        """"open 24 hours a day", "open now until 5pm", "closed now, opens Monday at 9am";
        None when the hours are unknown (we say nothing rather than guess)."""
        if self.kind == "unknown":
            return None
        if self.is_24_7:
            return "open 24 hours a day"
        local = to_london(now)
        closes = self.closes_at(local)
        if closes is not None:
            return f"open now until {_clock(closes)}"
        opening = self.next_opening(local)
        if opening is None:
            return "closed now"
        return f"closed now, opens {_day_word(opening, local)} at {_clock(opening)}"

    def summary(self) -> str:
        """Readable weekly hours: "Monday to Friday 10am to 4pm; Wednesday 6pm to 8pm"."""
        if self.kind == "unknown":
            return ""
        if self.is_24_7:
            return "24 hours a day, every day"
        parts = []
        for ranges, days in _group_days(self.weekly):
            times = " and ".join(f"{_clock_minutes(s)} to {_clock_minutes(e)}" for s, e in ranges)
            parts.append(f"{_day_span(days)} {times}")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "weekly": [[list(r) for r in day] for day in self.weekly]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OpeningHours:
        weekly = tuple(tuple((int(s), int(e)) for s, e in day) for day in data.get("weekly", []))
        return cls(kind=data.get("kind", "unknown"), weekly=weekly or ((),) * 7)


ALWAYS = OpeningHours(kind="always")
UNKNOWN = OpeningHours(kind="unknown")


def _clock_minutes(minutes: int) -> str:
    minutes %= MINUTES_PER_DAY
    hour, minute = divmod(minutes, 60)
    if (hour, minute) == (0, 0):
        return "midnight"
    if (hour, minute) == (12, 0):
        return "midday"
    suffix = "am" if hour < 12 else "pm"
    hour12 = hour % 12 or 12
    return f"{hour12}{suffix}" if minute == 0 else f"{hour12}:{minute:02d}{suffix}"


def _clock(moment: datetime) -> str:
    return _clock_minutes(moment.hour * 60 + moment.minute)


def _day_word(moment: datetime, local_now: datetime) -> str:
    days = (moment.date() - local_now.date()).days
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    return DAY_NAMES[moment.weekday()]


def _group_days(weekly) -> list[tuple[tuple[tuple[int, int], ...], list[int]]]:
    """Consecutive days with identical ranges, for a short summary."""
    groups: list[tuple[tuple[tuple[int, int], ...], list[int]]] = []
    for day, ranges in enumerate(weekly):
        if not ranges:
            continue
        ranges = tuple(sorted(ranges))
        if groups and groups[-1][0] == ranges and groups[-1][1][-1] == day - 1:
            groups[-1][1].append(day)
        else:
            groups.append((ranges, [day]))
    return groups


def _day_span(days: list[int]) -> str:
    if len(days) == 1:
        return DAY_NAMES[days[0]]
    return f"{DAY_NAMES[days[0]]} to {DAY_NAMES[days[-1]]}"


def parse_range(text: str) -> tuple[int, int]:
    """"09:00-17:00" → (540, 1020); "22:00-02:00" runs overnight → (1320, 1560)."""
    match = _RANGE.match(str(text).strip())
    if not match:
        raise HoursError(f"{text!r} is not a time range like 09:00-17:00")
    sh, sm, eh, em = (int(g) for g in match.groups())
    if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em != 0):
        raise HoursError(f"{text!r} has an impossible time")
    start, end = sh * 60 + sm, eh * 60 + em
    if end == start:
        raise HoursError(f"{text!r} opens and closes at the same time")
    if end < start:
        end += MINUTES_PER_DAY
    return start, end


def parse_hours(value: Any) -> OpeningHours:
    """Hours as written in contacts.yml: "24/7", "unknown", or a mapping of days."""
    if value is None:
        return UNKNOWN
    if isinstance(value, str):
        word = value.strip().lower()
        if word == "24/7":
            return ALWAYS
        if word == "unknown":
            return UNKNOWN
        raise HoursError(f"hours must be \"24/7\", \"unknown\" or a mapping of days, not {value!r}")
    if not isinstance(value, dict):
        raise HoursError("hours must be \"24/7\", \"unknown\" or a mapping of days")
    unknown_days = [str(k) for k in value if str(k).lower() not in DAYS]
    if unknown_days:
        raise HoursError(f"unknown day(s) {', '.join(unknown_days)} (use mon, tue, ... sun)")
    weekly: list[tuple[tuple[int, int], ...]] = []
    for day in DAYS:
        ranges = value.get(day)
        if ranges is None:
            ranges = []
        if isinstance(ranges, str):
            ranges = [ranges]
        if not isinstance(ranges, list):
            raise HoursError(f"{day}: must be a list of ranges like [\"09:00-17:00\"]")
        try:
            weekly.append(tuple(sorted(parse_range(r) for r in ranges)))
        except HoursError as error:
            raise HoursError(f"{day}: {error}") from None
    return OpeningHours(kind="weekly", weekly=tuple(weekly))


def _day_list(text: str) -> list[int]:
    """"mon-fri" → [0..4], "mon,wed" → [0, 2], "fri-mon" wraps, "daily" → every day."""
    text = text.strip().lower()
    if text in ("daily", "every day", "mon-sun"):
        return list(range(7))
    result: list[int] = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        if "-" in item:
            first, last = (p.strip()[:3] for p in item.split("-", 1))
            if first not in DAYS or last not in DAYS:
                raise HoursError(f"{item!r} is not a day range like mon-fri")
            start, end = DAYS.index(first), DAYS.index(last)
            result.extend((start + i) % 7 for i in range((end - start) % 7 + 1))
        elif item[:3] in DAYS:
            result.append(DAYS.index(item[:3]))
        else:
            raise HoursError(f"{item!r} is not a day (use mon, tue, ... sun)")
    if not result:
        raise HoursError(f"{text!r} names no days")
    return result


def parse_hours_spec(spec: str) -> OpeningHours:
    """Hours as one string, e.g. ADVICE_LINE_HOURS: "mon-fri 10:00-16:00; wed 18:00-20:00".

    Clauses are separated by ";"; each is days then one or more ranges. Empty → unknown.
    """
    spec = (spec or "").strip()
    if not spec or spec.lower() == "unknown":
        return UNKNOWN
    if spec.lower() == "24/7":
        return ALWAYS
    weekly: list[list[tuple[int, int]]] = [[] for _ in DAYS]
    for clause in filter(None, (c.strip() for c in spec.split(";"))):
        match = re.match(r"^([a-z ,\-]+?)\s+(\d.*)$", clause.lower())
        if not match:
            raise HoursError(f"{clause!r} should look like 'mon-fri 10:00-16:00'")
        days = _day_list(match.group(1))
        ranges = [parse_range(r) for r in re.split(r"[,\s]+(?=\d)", match.group(2).strip())]
        for day in days:
            weekly[day].extend(ranges)
    return OpeningHours(kind="weekly", weekly=tuple(tuple(sorted(d)) for d in weekly))


# --- Contacts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    key: str
    name: str
    phone: str = ""
    text: str = ""
    web: str = ""
    hours: OpeningHours = field(default=UNKNOWN)
    nations: tuple[str, ...] = ("all",)
    free: bool | None = None
    notes: str = ""
    source: str = ""
    source_date: date | None = None

    @property
    def is_24_7(self) -> bool:
        return self.hours.is_24_7

    @property
    def is_universal_number(self) -> bool:
        """999, 101, 111, 18000...: numbers everyone can be told without a helpline."""
        return digits(self.phone) in UNIVERSAL_NUMBERS | EMERGENCY_NUMBERS

    @property
    def numbers(self) -> frozenset[str]:
        """Every number of this contact, digits only (to check numbers written in text):
        the phone, and each number in `text` ("Textphone: 18001 101" gives 18001101)."""
        found = {digits(self.phone)} | {digits(n) for n in _NUMBER.findall(self.text)}
        return frozenset(n for n in found if n)

    def is_open(self, now: datetime) -> bool | None:
        return self.hours.is_open(now)

    def next_opening(self, now: datetime) -> datetime | None:
        return self.hours.next_opening(now)

    def serves(self, nation: str | None) -> bool:
        return nation is None or "all" in self.nations or nation in self.nations

    def describe(self, now: datetime) -> str:
        """One line for a person: "Name: how to reach (free, open or not)"."""
        notes = []
        if self.free:
            notes.append("free")
        status = self.hours.status_text(now)
        if status:
            notes.append(status)
        line = self.name
        reach = self._how_to_reach()
        if reach:
            line += f": {reach}"
        if notes:
            line += f" ({', '.join(notes)})"
        return line

    def _how_to_reach(self) -> str:
        parts = []
        if self.phone:
            parts.append(self.phone)
        if re.fullmatch(r"\+?[\d ]+", self.text):
            parts.append(f"text {self.text}")  # a bare number is an SMS number
        elif self.text and len(self.text) <= SHORT_TEXT:
            # Short wording such as "Textphone: 18001 101"; longer advice stays in notes.
            parts.append(self.text[0].lower() + self.text[1:])
        if not parts and self.web:
            parts.append(self.web)
        return ", or ".join(parts)

    def to_record(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "phone": self.phone,
            "text": self.text,
            "web": self.web,
            "hours": self.hours.to_json(),
            "nations": list(self.nations),
            "free": self.free,
            "notes": self.notes,
            "source": self.source,
            "source_date": self.source_date.isoformat() if self.source_date else None,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Contact:
        return cls(
            key=record["key"],
            name=record["name"],
            phone=record.get("phone") or "",
            text=record.get("text") or "",
            web=record.get("web") or "",
            hours=OpeningHours.from_json(record.get("hours") or {}),
            nations=tuple(record.get("nations") or ("all",)),
            free=None if record.get("free") is None else bool(record["free"]),
            notes=record.get("notes") or "",
            source=record.get("source") or "",
            source_date=as_date(record.get("source_date")),
        )


def _text_field(entry: dict, name: str) -> str:
    value = entry.get(name)
    if value is None:
        return ""
    # An unquoted number in YAML (text: 85258) arrives as an int.
    return str(value).strip()


def parse_contact(key: str, entry: Any) -> tuple[Contact | None, list[str], list[str]]:
    """(contact or None, errors, warnings) for one contacts.yml entry."""
    if not isinstance(entry, dict):
        return None, [f"contact {key!r} must be a mapping"], []
    errors: list[str] = []
    warnings: list[str] = []
    name = _text_field(entry, "name")
    source = _text_field(entry, "source")
    if not name:
        errors.append(f"contact {key!r} has no name")
    if not source:
        errors.append(f"contact {key!r} has no source")
    try:
        hours = parse_hours(entry.get("hours"))
    except HoursError as error:
        errors.append(f"contact {key!r} has malformed hours: {error}")
        hours = UNKNOWN
    if "hours" not in entry:
        warnings.append(f"contact {key!r} has no hours (taken as unknown)")
    nations = entry.get("nations") or ["all"]
    if isinstance(nations, str):
        nations = [nations]
    if not isinstance(nations, list) or any(n not in ALLOWED_NATIONS for n in nations):
        errors.append(f"contact {key!r} has unknown nations {nations!r}")
        nations = ["all"]
    free = entry.get("free")
    if free is not None and not isinstance(free, bool):
        errors.append(f"contact {key!r}: 'free' must be true or false")
        free = None
    if not (entry.get("phone") or entry.get("text") or entry.get("web")):
        errors.append(f"contact {key!r} has no phone, text or web")
    for number_field in ("phone", "text"):
        if entry.get(number_field) is not None and not isinstance(entry[number_field], str):
            # YAML reads 01234567 as an octal integer: the leading 0 and the number are lost.
            errors.append(f"contact {key!r}: quote the {number_field} (\"0800 1111\")")
    if errors:
        return None, errors, warnings
    contact = Contact(
        key=key,
        name=name,
        phone=_text_field(entry, "phone"),
        text=_text_field(entry, "text"),
        web=_text_field(entry, "web"),
        hours=hours,
        nations=tuple(nations),
        free=free,
        notes=_text_field(entry, "notes"),
        source=source,
        source_date=as_date(entry.get("source_date")),
    )
    return contact, errors, warnings


def load_contacts(path: Path) -> tuple[dict[str, Contact], list[str], list[str]]:
    """(valid contacts by key, errors, warnings). A missing file is an error, not a crash."""
    path = Path(path)
    if not path.exists():
        return {}, [f"{path.name} is missing"], []
    try:
        data = load_yaml_strict(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as error:
        return {}, [f"{path.name} cannot be read: {error}"], []
    if data is None:
        data = {}
    # Accept a top-level `contacts:` wrapper as well as a bare mapping.
    if isinstance(data, dict) and set(data) == {"contacts"} and isinstance(data["contacts"], dict):
        data = data["contacts"]
    if not isinstance(data, dict):
        return {}, [f"{path.name} must be a mapping of key → contact"], []
    contacts: dict[str, Contact] = {}
    errors: list[str] = []
    warnings: list[str] = []
    for key, entry in data.items():
        contact, entry_errors, entry_warnings = parse_contact(str(key), entry)
        errors.extend(f"{path.name}: {e}" for e in entry_errors)
        warnings.extend(f"{path.name}: {w}" for w in entry_warnings)
        if contact is not None:
            contacts[contact.key] = contact
    return contacts, errors, warnings
