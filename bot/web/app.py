"""The web app (Starlette): the chat page, the widget, article pages, the chat API,
/healthz, and the retention schedule.

Run by `safe-report run` as `uvicorn bot.web.app:create_app --factory --no-access-log`.

    GET  /                     the chat page (server-rendered opening; /static/chat.js runs it)
    GET  /widget.js            the embeddable widget (docs/WIDGET.md)
    GET  /privacy              the "about this service and your privacy" article
    GET  /articles/{id}        any knowledge-base article as a page
    POST /api/chat, DELETE /api/conversation/{sender}   bot.web.chat_api
    GET  /healthz
    GET  /openapi.json         this interface, described in bot/web/openapi.yml (staff app too)

Visitors get no cookies and no third-party anything; the headers are bot.web.security's.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from bot.retention import purge_all
from bot.settings import Settings, get_settings
from bot.web.chat_api import ChatAPI
from bot.web.security import SecurityHeadersMiddleware

logger = logging.getLogger(__name__)
WEB_DIR = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=str(WEB_DIR / "templates"))
STATIC_DIR = WEB_DIR / "static"
OPENAPI_FILE = WEB_DIR / "openapi.yml"

PRIVACY_ARTICLE = "about-this-service-privacy"
CHOICES = (
    ("Something happened to me", "/report_crime_victim"),
    ("I saw something happen", "/witness_crime"),
    ("I have a question", "/ask_question"),
    ("I want to talk to a person", "/request_human"),
)
DEFAULT_EXIT_URL = "https://www.bbc.co.uk/weather"


async def purge_on_schedule(settings: Settings) -> None:
    """Delete expired data every PURGE_INTERVAL_MINUTES while the stack runs."""
    while True:
        try:
            removed = await asyncio.to_thread(purge_all, settings)
            if any(removed.values()):
                logger.warning("Retention purge removed %s", removed)
        except Exception as error:  # keep the schedule alive; say what failed, not the data
            logger.error("Retention purge failed: %s", type(error).__name__)
        await asyncio.sleep(settings.purge_interval_minutes * 60)


# --- Phone numbers and a small, safe markdown subset for article pages -------------------

# UK numbers a person may need to tap: emergency and short numbers, Relay UK, 116 xxx,
# and numbers starting with 0 (checked for 10 or 11 digits). chat.js has the same rule.
PHONE = re.compile(
    r"(?<![\d£$€.,:/-])("
    r"18001 (?:0\d{2,4}(?:[ -]?\d{2,6}){1,3}|\d{3})"
    r"|0\d{2,4}(?:[ -]?\d{2,6}){1,3}"
    r"|116 ?\d{3}|18000|999|101|111"
    r")(?![\d/:.,]\d|\d)"
)


def _phone_link(match: re.Match) -> str:
    number = match.group(1)
    digits = re.sub(r"\D", "", number)
    if number.startswith("0") and len(digits) not in (10, 11):
        return number
    return f'<a href="tel:{digits}">{number}</a>'


def _inline(text: str) -> str:
    """Escaped text with **bold**, safe links and tap-to-call numbers."""
    out: list[str] = []
    position = 0
    for match in re.finditer(r"\[([^\]]+)\]\(([^)\s]+)\)", text):
        out.append(_plain(text[position:match.start()]))
        label, target = match.group(1), match.group(2)
        if target.startswith("#article-"):
            target = "/articles/" + target[len("#article-"):]
        if re.match(r"^(https?://|/articles/)[^\s\"'<>]+$", target):
            out.append(f'<a href="{html.escape(target)}">{_plain(label)}</a>')
        else:
            out.append(_plain(label))
        position = match.end()
    out.append(_plain(text[position:]))
    return "".join(out)


def _plain(text: str) -> str:
    escaped = html.escape(text, quote=True)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return PHONE.sub(_phone_link, escaped)


def markdown_to_html(markdown: str, *, top_level: int = 2) -> Markup:
    """Headings, paragraphs, bullet and numbered lists: all our articles use. Everything
    else is shown as text (escaped), so an article can never inject markup."""
    blocks: list[str] = []
    lines = markdown.strip().splitlines()
    paragraph: list[str] = []
    list_items: list[str] = []
    list_tag = ""

    def flush() -> None:
        nonlocal list_tag
        if paragraph:
            blocks.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()
        if list_items:
            items = "".join(f"<li>{_inline(item)}</li>" for item in list_items)
            blocks.append(f"<{list_tag}>{items}</{list_tag}>")
            list_items.clear()
            list_tag = ""

    for line in lines:
        stripped = line.strip()
        heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        bullet = re.match(r"^[-*]\s+(.*)$", stripped)
        numbered = re.match(r"^\d+[.)]\s+(.*)$", stripped)
        if not stripped:
            flush()
        elif heading:
            flush()
            level = min(6, max(top_level, len(heading.group(1))))
            blocks.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif bullet or numbered:
            tag = "ul" if bullet else "ol"
            if paragraph or (list_tag and list_tag != tag):
                flush()
            list_tag = tag
            list_items.append((bullet or numbered).group(1))
        elif list_items and line.startswith((" ", "\t")):
            list_items[-1] += " " + stripped
        else:
            if list_items:
                flush()
            paragraph.append(stripped)
    flush()
    return Markup("\n".join(blocks))


def openapi_description() -> dict:
    """The web app's OpenAPI description (bot/web/openapi.yml), as a dict."""
    import yaml

    return yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))


def long_date(value) -> str:
    return f"{value.day} {value:%B %Y}"


# --- The app ----------------------------------------------------------------------------


def staff_mount(settings: Settings) -> list[Mount]:
    """The staff review app at /staff (bot.web.staff), when it is installed."""
    try:
        from bot.web.staff import create_staff_app
    except ImportError as missing:
        if missing.name and missing.name.startswith("bot.web.staff"):
            return []
        raise
    return [Mount("/staff", app=create_staff_app(settings))]


def create_app(settings: Settings | None = None, *, schedule_purge: bool = True) -> Starlette:
    settings = settings or get_settings()
    chat_api = ChatAPI(settings)
    exit_url = settings.exit_url if re.match(r"^https?://", settings.exit_url) else DEFAULT_EXIT_URL
    if exit_url != settings.exit_url:
        logger.warning("EXIT_URL must start with https:// (or http://); using %s", exit_url)

    def page_context(**extra) -> dict:
        return {
            "exit_url": exit_url,
            "retention_hours": settings.conversation_retention_hours,
            "max_chars": settings.max_message_chars,
            "choices": CHOICES,
            **extra,
        }

    async def chat_page(request: Request) -> Response:
        return TEMPLATES.TemplateResponse(request, "chat.html", page_context(widget=False))

    async def widget_script(request: Request) -> Response:
        panel = TEMPLATES.get_template("chat.html").render(page_context(widget=True))
        config = {"exitUrl": exit_url, "panelHtml": panel}
        code = (
            "/* safe-report chat widget. Embed: <script src=\"https://HOST/widget.js\" defer>"
            "</script> (docs/WIDGET.md) */\n"
            "(function () {\n\"use strict\";\n"
            "var SR_SCRIPT = document.currentScript;\n"
            f"var SR_CONFIG = {json.dumps(config)};\n"
            f"{(STATIC_DIR / 'widget.js').read_text()}\n"
            f"{(STATIC_DIR / 'chat.js').read_text()}\n"
            "})();\n"
        )
        return Response(code, media_type="text/javascript; charset=utf-8")

    def article_response(request: Request, article_id: str) -> Response:
        from bot.knowledge import KnowledgeBase, KnowledgeBaseUnavailable
        from bot.knowledge.contacts import LONDON
        from bot.knowledge.render import render_article_body, render_text

        try:
            kb = KnowledgeBase.open(settings.knowledge_db)
        except KnowledgeBaseUnavailable as problem:
            logger.error("Article page without a knowledge base: %s", type(problem).__name__)
            kb = None
        article = kb.article(article_id) if kb else None
        if kb is not None and article is None:
            raise HTTPException(404)
        context = page_context(article=None, is_privacy=article_id == PRIVACY_ARTICLE)
        if article is not None:
            now = datetime.now(LONDON)
            body = render_article_body(article, kb, settings, now, links="anchor")
            context.update(
                article=article,
                summary=markdown_to_html(render_text(article.summary, kb, settings, now)),
                next_step=markdown_to_html(render_text(article.next_step, kb, settings, now)),
                body=markdown_to_html(body),
                reviewed=long_date(article.last_reviewed),
                sources=[(s.title, s.url, long_date(s.date)) for s in article.sources],
            )
        status = 200 if article is not None or article_id == PRIVACY_ARTICLE else 503
        return TEMPLATES.TemplateResponse(request, "article.html", context, status_code=status)

    async def privacy_page(request: Request) -> Response:
        return article_response(request, PRIVACY_ARTICLE)

    async def article_page(request: Request) -> Response:
        article_id = request.path_params["article_id"]
        if not re.match(r"^[a-z0-9]+(?:-[a-z0-9]+)*$", article_id):
            raise HTTPException(404)
        return article_response(request, article_id)

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    openapi = openapi_description()

    async def openapi_json(_request: Request) -> JSONResponse:
        return JSONResponse(openapi)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        if status == 500:
            logger.error("Request failed: %s", type(exc).__name__)
        messages = {404: "Not found", 405: "Method not allowed", 500: "Something went wrong"}
        text = messages.get(status, "Request not accepted")
        # Keep what the exception says about the response (405's Allow header, RFC 9110).
        headers = getattr(exc, "headers", None) if isinstance(exc, HTTPException) else None
        if status == 405 and not headers:  # StaticFiles' 405 names no methods; it has two
            headers = {"allow": "GET, HEAD"}
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": text.lower().replace(" ", "_"), "message": text + "."},
                                status_code=status, headers=headers)
        if status in (404, 500) and request.method in ("GET", "HEAD"):
            return TEMPLATES.TemplateResponse(
                request, "article.html",
                page_context(article=None, is_privacy=False, error_status=status),
                status_code=status, headers=headers,
            )
        return PlainTextResponse(text, status_code=status, headers=headers)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(purge_on_schedule(settings)) if schedule_purge else None
        yield
        if task:
            task.cancel()
        await chat_api.close()

    app = Starlette(
        routes=[
            *staff_mount(settings),
            Route("/", chat_page),
            Route("/widget.js", widget_script),
            Route("/privacy", privacy_page),
            Route("/articles/{article_id}", article_page),
            Route("/healthz", healthz),
            Route("/openapi.json", openapi_json),
            *chat_api.routes(),
            Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static"),
        ],
        exception_handlers={HTTPException: http_error, Exception: http_error},
        lifespan=lifespan,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.state.settings = settings
    app.state.chat_api = chat_api
    return app
