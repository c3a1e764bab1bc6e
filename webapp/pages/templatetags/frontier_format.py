"""Number, duration and JSON formatting for the pages (a dash stands for an unknown value)."""

import json

from django import template

register = template.Library()

UNKNOWN = "—"


@register.filter
def sci(value, digits=3):
    """Significant digits, exponent when large or small: 8.76e12, 0.465, 51."""
    if value is None or value == "":
        return UNKNOWN
    return f"{float(value):.{int(digits)}g}".replace("e+", "e")


def _short(number: float) -> str:
    """Three significant digits without an exponent: 88, 1.2, 0.494, 13.5."""
    text = f"{number:.3g}"
    return f"{number:.0f}" if "e+" in text else text


@register.filter
def params(count):
    """A parameter count a reader can take in: 88 K, 1.2 M, 0.5 B, 7 B. Below 100 M the count is in
    thousands or millions (tiny models have 10^4–10^6 parameters), from 100 M on in billions."""
    if count is None or count == "":
        return UNKNOWN
    count = float(count)
    if count >= 1e8:
        return f"{_short(count / 1e9)} B"
    if count >= 1e6:
        return f"{_short(count / 1e6)} M"
    if count >= 1e3:
        return f"{_short(count / 1e3)} K"
    return _short(count)


SI_PREFIXES = ((1e24, "Y"), (1e21, "Z"), (1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


@register.filter
def si(value):
    """A large count with an SI prefix: 8.76 T, 11.6 M (FLOPs); the exact value goes in a title."""
    if value is None or value == "":
        return UNKNOWN
    value = float(value)
    for scale, prefix in SI_PREFIXES:
        if abs(value) >= scale:
            return f"{_short(value / scale)} {prefix}"
    return _short(value)


@register.filter
def milliseconds(ms):
    """A latency in the unit that suits it: 0.42 ms, 38.5 ms, 1.24 s."""
    if ms is None or ms == "":
        return UNKNOWN
    ms = float(ms)
    return f"{_short(ms / 1000)} s" if ms >= 999.5 else f"{_short(ms)} ms"


@register.filter
def percent(fraction, digits=1):
    if fraction is None or fraction == "":
        return UNKNOWN
    return f"{float(fraction) * 100:.{int(digits)}f} %"


@register.filter
def duration(seconds):
    """Seconds as "42 s", "3 min 5 s" or "2 h 10 min"."""
    if seconds is None or seconds == "":
        return UNKNOWN
    seconds = round(float(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@register.filter
def interval(bounds, digits=3):
    """A 95 % interval [low, high]."""
    if not bounds:
        return UNKNOWN
    low, high = bounds
    return f"[{sci(low, digits)}, {sci(high, digits)}]"


@register.filter
def pretty_json(value):
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@register.filter
def get_item(mapping, key):
    return (mapping or {}).get(key)


@register.filter
def stale_text(stale):
    """A row's ``stale`` ({benchmark: reasons}) as one tooltip line per benchmark."""
    return "\n".join(f"{key}: {'; '.join(reasons)}" for key, reasons in sorted((stale or {}).items()))
