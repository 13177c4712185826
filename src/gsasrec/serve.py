"""HTTP service over Recommender (FastAPI + uvicorn, the `serve` extra).

Concurrent requests are answered in batches: each request waits a few milliseconds in a queue, and
one forward pass scores everything that arrived meanwhile.
"""


import asyncio
import json
from typing import Annotated, Optional, Union

from gsasrec.api_page import api_page
from gsasrec.errors import GSASRecError
from gsasrec.recommender import Recommendations, Recommender

MAX_K = 100
MAX_HISTORY = 10_000
MAX_BATCH = 256
MAX_BODY_BYTES = 1 << 20
BATCH_WAIT_SECONDS = 0.002


def create_app(recommender: Recommender, max_k: int = MAX_K, max_history: int = MAX_HISTORY,
               max_batch: int = MAX_BATCH, max_body_bytes: int = MAX_BODY_BYTES):
    from fastapi import FastAPI, HTTPException
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse
    from pydantic import AfterValidator, BaseModel, Field, StrictInt, StrictStr

    # A JSON string may hold a lone surrogate ("\ud800"), which is no text at all: refuse it here (422)
    # rather than fail later when an unknown id is echoed back.
    ItemId = Union[Annotated[StrictStr, AfterValidator(unicode_text)], StrictInt]
    max_k = min(max_k, recommender.model.num_items)

    class RecommendRequest(BaseModel):
        history: Optional[list[ItemId]] = Field(None, min_length=1, max_length=max_history,
                                                description="item ids, oldest first")
        user: Optional[Annotated[StrictStr, AfterValidator(unicode_text)]] = Field(
            None, description="instead of a history: a user's own id (user_ids.tsv), for the history the "
                              "dataset holds for them")
        k: int = Field(10, ge=1, le=max_k)
        exclude_seen: bool = True

    class BatchRequest(BaseModel):
        histories: list[list[ItemId]] = Field(min_length=1, max_length=max_batch)
        k: int = Field(10, ge=1, le=max_k)
        exclude_seen: bool = True

    class Item(BaseModel):
        rank: int
        item: ItemId
        name: Optional[str]
        score: float
        probability: float

    class RecommendResponse(BaseModel):
        items: list[Item]
        unknown_items: list[ItemId]

    class BatchResponse(BaseModel):
        results: list[RecommendResponse]

    description = "Next-item recommendations from a gSASRec/SASRec checkpoint."
    # /docs is our own offline page (api_page.py); FastAPI's Swagger UI and ReDoc need a CDN.
    app = FastAPI(title="gsasrec", description=description, docs_url=None, redoc_url=None)
    batcher = Batcher(recommender, max_batch)
    page = api_page("gsasrec", description, request_examples(recommender))

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return HTMLResponse(page)

    @app.post("/recommend", response_model=RecommendResponse)
    async def recommend(request: RecommendRequest):
        """Top-k next items for one history (or a known user's); unknown ids are listed and ignored."""
        if (request.history is None) == (request.user is None):
            raise HTTPException(422, "give exactly one of history (item ids) or user (a user id)")
        history = request.history if request.user is None else recommender.known_history(request.user)
        result = await batcher.submit(history, request.k, request.exclude_seen)
        return result.to_dict()

    @app.post("/recommend/batch", response_model=BatchResponse)
    async def recommend_batch(request: BatchRequest):
        """Top-k for several histories at once."""
        for index, history in enumerate(request.histories):
            if len(history) > max_history:
                raise HTTPException(422, f"history {index} has {len(history)} items, at most {max_history}")
        results = await asyncio.gather(*(batcher.submit(h, request.k, request.exclude_seen)
                                         for h in request.histories), return_exceptions=True)
        for index, result in enumerate(results):
            if isinstance(result, GSASRecError):
                raise HTTPException(422, f"history {index}: {result}")
            if isinstance(result, BaseException):
                raise result
        return {"results": [result.to_dict() for result in results]}

    @app.get("/health")
    async def health():
        return {"status": "ok", "num_items": recommender.model.num_items,
                "sequence_length": recommender.model.sequence_length, "device": str(recommender.device)}

    @app.get("/items/{item_id}")
    async def item(item_id: str):
        internal = recommender.catalog.internal.get(item_id)
        if internal is None:
            raise HTTPException(404, f"unknown item id {item_id!r}")
        return {"internal_id": internal, **recommender.catalog.describe(internal)}

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_, error: RequestValidationError):
        # The offending input is left out: echoing a 10 MB history back helps nobody.
        errors = [{key: value for key, value in e.items() if key not in ("input", "ctx", "url")}
                  for e in error.errors()]
        return JSONResponse(status_code=422, content={"detail": errors})

    @app.exception_handler(GSASRecError)
    async def user_error(_, error: GSASRecError):
        return JSONResponse(status_code=422, content={"detail": str(error)})

    return BodyLimit(app, max_body_bytes)


def request_examples(recommender: Recommender) -> dict[str, str]:
    """A request to each endpoint that the served model answers: histories of its own first items."""
    items = recommender.catalog.external[:4]
    return {"post /recommend": json.dumps({"history": items[:3], "k": 5}),
            "post /recommend/batch": json.dumps({"histories": [items[:2], items[2:4]], "k": 3}),
            "get /health": "/health",
            "get /items/{item_id}": f"/items/{items[0]}"}


def unicode_text(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("item ids must be valid Unicode text (no lone surrogates)") from None
    return text


class Batcher:
    """Collects concurrent requests for a moment and scores them in one forward pass."""

    def __init__(self, recommender: Recommender, max_batch: int):
        self.recommender = recommender
        self.max_batch = max_batch
        self.queue: asyncio.Queue | None = None
        self.worker: asyncio.Task | None = None

    async def submit(self, history, k: int, exclude_seen: bool) -> Recommendations:
        """The recommendations for one history, scored with whatever else arrives meanwhile. A history
        without known items is refused here (GSASRecError), so that it cannot fail a whole batch."""
        if self.worker is None or self.worker.done():
            self.queue = asyncio.Queue()
            self.worker = asyncio.create_task(self.run())
        self.recommender.catalog.require_known(history)
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((history, k, exclude_seen, future))
        return await future

    async def run(self) -> None:
        while True:
            jobs = [await self.queue.get()]
            await asyncio.sleep(BATCH_WAIT_SECONDS)
            while not self.queue.empty() and len(jobs) < self.max_batch:
                jobs.append(self.queue.get_nowait())
            histories, ks, excludes, futures = zip(*jobs)
            try:
                results = await asyncio.to_thread(self.recommender.recommend_batch, list(histories),
                                                  list(ks), list(excludes))
            except Exception as error:  # one bad batch must not stop the worker
                for future in futures:
                    if not future.done():
                        future.set_exception(error)
                continue
            for future, result in zip(futures, results):
                if not future.done():
                    future.set_result(result)


class BodyLimit:
    """ASGI middleware: 413 for request bodies over `limit` bytes, declared or streamed."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self.refuse(send)
        # The body (at most `limit` bytes) is read here and handed on whole: an error raised while the
        # app reads it would become the app's 400 for an unreadable body instead of a 413.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees an empty body
            size += len(message.get("body", b""))
            if size > self.limit:
                return await self.refuse(send)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        handed = False

        async def replay():
            nonlocal handed
            if handed:
                return await receive()
            handed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def refuse(self, send) -> None:
        body = b'{"detail":"request body too large"}'
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def serve(recommender: Recommender, host: str = "127.0.0.1", port: int = 8000, **limits) -> None:
    import uvicorn

    uvicorn.run(create_app(recommender, **limits), host=host, port=port, log_level="info")
