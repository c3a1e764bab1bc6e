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
