"""The site navigation, with the current section marked (aria-current) from the request path."""

from django import template
from django.conf import settings

register = template.Library()

NAVIGATION = (
    ("Overview", "/"),
    ("Leaderboard", "/leaderboard/"),
    ("Frontier", "/frontier/"),
    ("Compressors", "/compressors/"),
    ("Deploy", "/deploy/"),
    ("Queue", "/queue/"),
    ("Train", "/trainings/new/"),
    ("Upload", "/upload/"),
    ("API docs", "/api/docs/"),
)


@register.inclusion_tag("pages/nav.html", takes_context=True)
def site_nav(context):
    request = context.get("request")
    path = request.path if request else ""
    links = [
        {"label": label, "href": href, "current": path == href if href == "/" else path.startswith(href)}
        for label, href in NAVIGATION
    ]
    return {"links": links}


@register.simple_tag
def signup_enabled() -> bool:
    """Whether the sign-up page is open (FRONTIER_SIGNUP_ENABLED)."""
    return settings.FRONTIER_SIGNUP_ENABLED
