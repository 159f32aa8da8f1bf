"""GET /v1/policy: the server's content rules, published to everyone (no sign-in needed), with
their match in full: what is refused, warned about or logged is never a secret. GET /rules: the
same, as a page for people.

`install_policy(app, settings)` reads the rules file when the app is made (a bad file stops the
start with a message naming the rule) and adds this router and the admin audit endpoints.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse

from iaforall.api import admin_audit
from iaforall.api.deps import services
from iaforall.api.web.pages import SECURITY_HEADERS
from iaforall.policy.engine import EXCERPT_CONTEXT, EXCERPT_MATCH
from iaforall.policy.gate import Policy
from iaforall.policy.rules import DEFAULT_LANGUAGE, Rule, Rules, load_rules
from iaforall.services import Services
from iaforall.settings import Settings
from iaforall.store.audit import AuditLog
from iaforall.web import STATIC_DIR

router = APIRouter(tags=["policy"])


def install_policy(app: FastAPI, settings: Settings) -> Rules:
    """Load the rules (RulesFileError if the file is wrong) and serve them."""
    rules = load_rules(settings.policy.rules_file)
    app.state.policy_rules = rules
    app.include_router(router)
    app.include_router(admin_audit.router)
    return rules


async def rules_of(request: Request) -> Rules:
    rules: Rules = request.app.state.policy_rules
    return rules


async def policy_of(
    rules: Annotated[Rules, Depends(rules_of)], svc: Annotated[Services, Depends(services)]
) -> Policy:
    """The policy the request path checks with (cheap: the rules and the audit log's door)."""
    return Policy(rules, AuditLog(svc.database), max_chars=svc.settings.policy.rules_max_chars)


def preferred_language(accept_language: str) -> str | None:
    """The first language of an Accept-Language header, by quality ("fr-CA,fr;q=0.9" -> fr-CA)."""
    best, best_q = None, 0.0
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and tag != "*" and q > best_q:
            best, best_q = tag.strip(), q
    return best


def published(rule: Rule, language: str | None) -> dict[str, Any]:
    match: dict[str, Any] = (
        {
            "keywords": list(rule.match.keywords or ()),
            "whole_words": True,
            "ignores": "case, accents",
        }
        if rule.match.regex is None
        else {"regex": rule.match.regex, "syntax": "RE2", "ignores": "case"}
    )
    return {
        "id": rule.id,
        "description": rule.describe(language),
        "descriptions": dict(rule.description),
        "action": rule.action,
        "applies_to": list(rule.applies_to),
        "match": match,
    }


@router.get("/v1/policy")
async def get_policy(
    request: Request,
    rules: Annotated[Rules, Depends(rules_of)],
    svc: Annotated[Services, Depends(services)],
    lang: Annotated[str | None, Query(max_length=35)] = None,
) -> dict[str, Any]:
    language = lang or preferred_language(request.headers.get("accept-language", ""))
    max_chars = svc.settings.policy.rules_max_chars
    return {
        "object": "policy",
        "language": language or DEFAULT_LANGUAGE,
        "rules": [published(rule, language) for rule in rules.rules],
        "decisions": {
            "returned": "Every decision is returned in the answer, with the rule's id and "
            "description: a block as an error (HTTP 403, code policy_blocked), a warn or log "
            "under iaforall.decisions.",
            "logged": "Each decision is written to an audit log that administrators can read: "
            "who, when, which rule, which model and an excerpt of the matched text of at most "
            f"{EXCERPT_MATCH + 2 * EXCERPT_CONTEXT} characters.",
            "read": "The rules read the whole text they apply to, up to "
            f"{max_chars:,} characters for a request (its messages together) or an answer; "
            "a longer one is refused whole (HTTP 413, code too_long_for_rules), never "
            "checked in part.",
        },
        "injected_into_prompts": False,
    }


@router.get("/rules", include_in_schema=False)
async def rules_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "rules.html", headers=SECURITY_HEADERS)
