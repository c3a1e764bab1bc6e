"""API-wide error handling: a service's error (core.errors.ServiceError) becomes a response with its
message and status; a full disk is a 507 with a JSON message, not an HTML 500; reads of one row anonymous
visitors may not see ask them to authenticate."""

import errno

from django.http import Http404
from rest_framework.exceptions import NotAuthenticated
from rest_framework.response import Response
from rest_framework.views import exception_handler

from webapp.core.errors import ServiceError

OUT_OF_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def frontier_exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        return Response({"detail": str(exc)}, status=exc.http_status)
    if isinstance(exc, OSError) and exc.errno in OUT_OF_SPACE:
        return Response(
            {"detail": "The server is out of disk space; nothing was stored. Try again later (the operators "
                       "are told by /healthz); a chunked upload resumes from its last stored byte."},
            status=507,
        )
    return exception_handler(exc, context)


def readable_or_refused(queryset, request, pk: int, what: str):
    """The row the user may read, else: anonymous visitors are asked to authenticate (401; the same
    for a row that does not exist, so nothing is given away), logged-in users get a 404."""
    found = queryset.filter(pk=pk).first()
    if found is None:
        if not request.user.is_authenticated:
            raise NotAuthenticated(f"No public {what} {pk}: if it is yours, authenticate (Authorization: Token …).")
        raise Http404(f"No such {what}, or it is not yours.")
    return found
