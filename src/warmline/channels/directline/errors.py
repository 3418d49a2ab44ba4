"""Direct Line error bodies: ``{"error": {"code", "message"}}`` with the spec's status codes."""

from __future__ import annotations

from fastapi.responses import JSONResponse


class DirectLineError(Exception):
    """An error a Direct Line client should see as-is; codes are stable, messages may change."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> JSONResponse:
        """The HTTP response for this error."""
        return JSONResponse({"error": {"code": self.code, "message": self.message}}, status_code=self.status)


def bad_argument(message: str) -> DirectLineError:
    """400: the request itself is wrong."""
    return DirectLineError(400, "BadArgument", message)


def unauthorized(message: str) -> DirectLineError:
    """401: no usable secret or token."""
    return DirectLineError(401, "Unauthorized", message)


def token_expired() -> DirectLineError:
    """403 TokenExpired, which DirectLineJS turns into ``ExpiredToken``."""
    return DirectLineError(
        403, "TokenExpired", "The token has expired; start a new conversation or refresh in time."
    )


def forbidden(message: str) -> DirectLineError:
    """403: valid credentials, but not for this resource."""
    return DirectLineError(403, "Forbidden", message)


def not_found(message: str) -> DirectLineError:
    """404: no such conversation or file (DirectLineJS reads a 404 on poll as ``Ended``)."""
    return DirectLineError(404, "NotFound", message)


def too_large(message: str) -> DirectLineError:
    """413: the body is over the configured limit."""
    return DirectLineError(413, "MessageSizeTooBig", message)
