"""Small conversions shared by the object layer: quantities, timestamps, stable uids and addresses."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

_UID_NS = uuid.UUID("6f6a0b7e-2a52-4c1e-9a57-5a1d0c0ffee0")

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1), "k": Decimal("1e3"),
            "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"), "P": Decimal("1e15"), "E": Decimal("1e18")}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def stable_uid(*parts: object) -> str:
    """A UUID that is the same for the same identity, so uids survive restarts and re-materialisation."""
    return str(uuid.uuid5(_UID_NS, "/".join(str(p) for p in parts)))


def digest(*parts: object, n: int = 10) -> str:
    return hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()[:n]


def ts(dt: datetime | None) -> str | None:
    """RFC 3339 in UTC, whole seconds: how the apiserver writes metav1.Time."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(s: str | None) -> datetime | None:
    if not s:
        return None
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def cpu_quantity(cores: float) -> str:
    """Cores as the apiserver canonicalises them: "250m", "1", "1500m"."""
    milli = round(cores * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def memory_quantity(nbytes: float) -> str:
    """Bytes in the largest exact binary (or decimal) suffix: "256Mi", "1Gi", "1G", "1000"."""
    b = int(round(nbytes))
    if b == 0:
        return "0"
    for suffix, factor in (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if b % factor == 0:
            return f"{b // factor}{suffix}"
    for suffix, factor in (("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if b % factor == 0:
            return f"{b // factor}{suffix}"
    return str(b)


def parse_quantity(value: object) -> float:
    """A Kubernetes quantity ("500m", "0.5", "1Gi", "128974848", "1e3", 2) as a float; ValueError if malformed."""
    if isinstance(value, bool):
        raise ValueError(f"quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$', got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"quantity must be a string or number, got {value!r}")
    m = _QUANTITY.match(value.strip())
    if not m:
        raise ValueError(
            f"quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$', got {value!r}"
        )
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:
        raise ValueError(f"malformed quantity {value!r}") from None
    suffix = m.group(2) or ""
    factor = Decimal(_BINARY[suffix]) if suffix in _BINARY else _DECIMAL[suffix]
    return float(number * factor)


def ip_for(prefix: str, *parts: object) -> str:
    """A stable address in `prefix` ("10.0" or "10.244"), two more octets from a hash."""
    h = int(digest(*parts, n=8), 16)
    return f"{prefix}.{(h >> 8) % 254 + 1}.{h % 253 + 2}"


def age(delta_s: float) -> str:
    """kubectl's human duration (k8s.io/apimachinery/pkg/util/duration.HumanDuration)."""
    s = int(delta_s)
    if s < 0:
        return "<invalid>"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d{h % 24}h" if h % 24 else f"{h // 24}d"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    if h < 24 * 365 * 8:
        y = h // (24 * 365)
        d = (h // 24) % 365
        return f"{y}y{d}d" if d else f"{y}y"
    return f"{h // (24 * 365)}y"
