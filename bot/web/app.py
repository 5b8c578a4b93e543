"""The web app (Starlette): the chat page, /healthz, and the retention schedule.

Run by `safe-report run` as `uvicorn bot.web.app:create_app --factory --no-access-log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from bot.retention import purge_all
from bot.settings import Settings, get_settings
from bot.web.security import SecurityHeadersMiddleware

logger = logging.getLogger(__name__)
TEMPLATES = Jinja2Templates(directory=str(__import__("pathlib").Path(__file__).parent / "templates"))


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


def create_app(settings: Settings | None = None, *, schedule_purge: bool = True) -> Starlette:
    settings = settings or get_settings()

    async def chat_page(request: Request):
        return TEMPLATES.TemplateResponse(request, "chat.html", {"exit_url": settings.exit_url})

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def not_found(_request: Request, _exc: Exception) -> PlainTextResponse:
        return PlainTextResponse("Not found", status_code=404)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(purge_on_schedule(settings)) if schedule_purge else None
        yield
        if task:
            task.cancel()

    app = Starlette(
        routes=[Route("/", chat_page), Route("/healthz", healthz)],
        exception_handlers={404: not_found},
        lifespan=lifespan,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.state.settings = settings
    return app
