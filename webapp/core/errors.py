"""The base of every error a service raises on purpose: the API answers it with its message and
``http_status`` (core.api's exception handler), so no view has to know each app's errors."""


class ServiceError(ValueError):
    """A request a service cannot honour as asked; the message says what to change."""

    http_status = 400
