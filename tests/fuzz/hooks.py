"""Schemathesis hooks for tests/test_fuzz.py (loaded by schemathesis in .venv-fuzz, not by
pytest): when the test signs a staff user in, every staff form gets the session's real CSRF
token, and some staff URLs get a real handoff reference, so that the fuzz reaches the code
behind the checks instead of stopping at "form expired" or "no such handoff".

Environment (set by the test): SR_FUZZ_CSRF (the signed-in session's token),
SR_FUZZ_LOGIN_CSRF (the sign-in form's token, whose cookie the test sends),
SR_FUZZ_REF (a handoff to look at, note, assign, export, reveal) and SR_FUZZ_DELETE_REF
(a handoff the delete form may delete). Unset, the hooks change nothing.
"""

from __future__ import annotations

import os
import zlib

import schemathesis


def _every_other(value: object) -> bool:
    """A stable half of the generated values (no randomness: the run stays reproducible)."""
    return zlib.crc32(repr(value).encode("utf-8", "surrogatepass")) % 2 == 0


@schemathesis.hook
def before_call(context, case, **kwargs) -> None:
    path = case.operation.path
    if not path.startswith("/staff/"):
        return
    body = case.body
    if isinstance(body, dict) and "csrf_token" in body:
        token = os.environ.get("SR_FUZZ_LOGIN_CSRF" if path == "/staff/login" else "SR_FUZZ_CSRF")
        if token:
            case.body = {**body, "csrf_token": token}
    params = case.path_parameters
    if params and "ref" in params and _every_other(params["ref"]):
        deleting = path.endswith("/delete") and case.method.upper() == "POST"
        ref = os.environ.get("SR_FUZZ_DELETE_REF" if deleting else "SR_FUZZ_REF")
        if ref:
            case.path_parameters = {**params, "ref": ref}
