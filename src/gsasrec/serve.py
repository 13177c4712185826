"""HTTP service over Recommender (FastAPI + uvicorn, the `serve` extra).

Concurrent requests are answered in batches: each request waits a few milliseconds in a queue, and
one forward pass scores everything that arrived meanwhile. Several models can be served at once, by name;
`/` is the explorer page (gsasrec/page/: plain HTML, CSS and JavaScript, nothing loaded from elsewhere),
`/docs` and `/redoc` the API's pages.
"""


import asyncio
import random
from importlib import resources
from typing import Annotated, Optional, Union

from gsasrec.errors import GSASRecError, shortened
from gsasrec.recommender import Recommendations, Recommender

MAX_K = 100
MAX_HISTORY = 10_000
MAX_BATCH = 256
MAX_BODY_BYTES = 1 << 20
BATCH_WAIT_SECONDS = 0.002
MAX_SEARCH = 100  # items per page of GET /items
MAX_QUERY = 200  # characters of a search
PAGE_FILES = {"explorer.js": "text/javascript", "explorer.css": "text/css"}  # beside page/index.html


def create_app(models: Union[Recommender, dict[str, Recommender]], max_k: int = MAX_K,
               max_history: int = MAX_HISTORY, max_batch: int = MAX_BATCH, max_body_bytes: int = MAX_BODY_BYTES):
    """The service over one model, or several by name (the first answers requests that name none)."""
    from fastapi import HTTPException, Path, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

    models = {"model": models} if isinstance(models, Recommender) else dict(models)
    if not models:
        raise GSASRecError("serve needs at least one model")
    first = next(iter(models.values()))
    batchers = {name: Batcher(recommender, max_batch) for name, recommender in models.items()}
    examples = request_examples(first)
    # A JSON string may hold a lone surrogate ("\ud800"), which is no text at all: refuse it here (422)
    # rather than fail later when an unknown id is echoed back.
    ItemId = Union[Annotated[StrictStr, AfterValidator(unicode_text)], StrictInt]
    max_k = min(max_k, min(recommender.model.num_items for recommender in models.values()))
    model_field = Field(None, description=f"which loaded model answers: {', '.join(models)} (default: "
                                          f"{next(iter(models))}, the first); GET /models lists them")

    class RecommendRequest(BaseModel):
        model_config = ConfigDict(json_schema_extra={"examples": [examples["recommend"]]})
        history: Optional[list[ItemId]] = Field(None, min_length=1, max_length=max_history,
                                                description="item ids (the dataset's own), oldest first; "
                                                            "histories longer than the model's window are cut "
                                                            "to their most recent items")
        user: Optional[Annotated[StrictStr, AfterValidator(unicode_text)]] = Field(
            None, description="instead of a history: a user's own id (user_ids.tsv), for the history the "
                              "dataset holds for them")
        # Strict: true, "5" and 5.0 are no k, "false" is no boolean (422, as the README says of wrong types)
        k: StrictInt = Field(10, ge=1, le=max_k, description=f"how many items to return (1..{max_k})")
        exclude_seen: StrictBool = Field(True, description="leave out items already in the history")
        model: Optional[str] = model_field
        target: Optional[ItemId] = Field(None, description="an item whose rank among all recommendations is "
                                                           "returned as target_rank, also outside the top k")

    class BatchRequest(BaseModel):
        model_config = ConfigDict(json_schema_extra={"examples": [examples["batch"]]})
        histories: list[list[ItemId]] = Field(min_length=1, max_length=max_batch,
                                              description=f"up to {max_batch} histories, each as in /recommend")
        k: StrictInt = Field(10, ge=1, le=max_k, description=f"how many items per history (1..{max_k})")
        exclude_seen: StrictBool = Field(True, description="leave out items already in each history")
        model: Optional[str] = model_field

    class Item(BaseModel):
        rank: int = Field(description="1 is the best")
        item: ItemId = Field(description="the item's id in the dataset")
        name: Optional[str] = Field(description="its title, where the dataset has names")
        score: float = Field(description="the model's logit")
        probability: float = Field(description="sigmoid(score): calibrated for models trained with gbce_t=1")

    class RecommendResponse(BaseModel):
        items: list[Item]
        unknown_items: list[ItemId] = Field(description="ids of the history that the model does not know: "
                                                        "ignored")
        target_rank: Optional[int] = Field(None, description="the target's rank (with target; null when it "
                                                             "is unknown or excluded as seen)")

    class BatchResponse(BaseModel):
        results: list[RecommendResponse]

    description = ("Next-item recommendations from gSASRec/SASRec checkpoints. The explorer page is at `/`. "
                   f"Models loaded: {', '.join(models)}.")
    app = offline_docs_app(title="gsasrec", description=description)

    def pick(name: Optional[str]) -> str:
        if name is None:
            return next(iter(models))
        if name not in models:
            raise HTTPException(422, f"unknown model {name!r}; loaded: {', '.join(models)}")
        return name

    @app.get("/", include_in_schema=False)
    async def explorer():
        return HTMLResponse(page_file("index.html"))

    @app.get("/explorer/{name}", include_in_schema=False)
    async def explorer_file(name: str):
        if name not in PAGE_FILES:
            raise HTTPException(404, f"no file {name!r}")
        return Response(page_file(name), media_type=PAGE_FILES[name])

    @app.post("/recommend", response_model=RecommendResponse)
    async def recommend(request: RecommendRequest):
        """Top-k next items for one history (or a known user's); unknown ids are listed and ignored."""
        name = pick(request.model)
        if (request.history is None) == (request.user is None):
            raise HTTPException(422, "give exactly one of history (item ids) or user (a user id)")
        recommender = models[name]
        history = request.history if request.user is None else recommender.known_history(request.user)
        result = (await batchers[name].submit(history, request.k, request.exclude_seen)).to_dict()
        if request.target is not None:
            result["target_rank"] = await asyncio.to_thread(recommender.rank_of, history, request.target,
                                                            request.exclude_seen)
        return result

    @app.post("/recommend/batch", response_model=BatchResponse)
    async def recommend_batch(request: BatchRequest):
        """Top-k for several histories at once."""
        batcher = batchers[pick(request.model)]
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

    @app.api_route("/health", methods=["GET", "HEAD"])
    async def health(model: Optional[str] = Query(None, description="a loaded model (default: the first)")):
        """Whether the service is up, and the model's catalogue size, window and device."""
        recommender = models[pick(model)]
        return {"status": "ok", "num_items": recommender.model.num_items,
                "sequence_length": recommender.model.sequence_length, "device": str(recommender.device),
                "models": list(models)}

    @app.get("/models")
    async def list_models():
        """The loaded models in order (the first answers requests that name none), each with its card: the
        config, training command, steps, test metrics and calibration its checkpoint holds."""
        return {"models": [{"name": name, **recommender.card()} for name, recommender in models.items()]}

    @app.get("/items")
    async def search_items(query: str = Query(min_length=1, max_length=MAX_QUERY,
                                              description="part of a title, or the start of an item id",
                                              examples=[examples["query"]]),
                           limit: int = Query(20, ge=1, le=MAX_SEARCH, description="items per page"),
                           offset: int = Query(0, ge=0, description="how many matches to skip"),
                           model: Optional[str] = Query(None, description="whose catalogue (default: the first)")):
        """Items whose id equals or starts with the query, then those whose title contains it."""
        catalog = models[pick(model)].catalog
        total, found = catalog.search(unicode_text(query), limit, offset)
        return {"total": total, "offset": offset, "limit": limit,
                "items": [catalog.describe(internal) for internal in found]}

    @app.get("/items/{item_id}")
    async def item(item_id: str = Path(description="an item id of the dataset", examples=[examples["item"]]),
                   model: Optional[str] = Query(None, description="whose catalogue (default: the first)")):
        """One item: its internal id and name."""
        catalog = models[pick(model)].catalog
        internal = catalog.internal.get(item_id)
        if internal is None:
            raise HTTPException(404, f"unknown item id {shortened(item_id)}")
        return {"internal_id": internal, **catalog.describe(internal)}

    @app.get("/users/{split}")
    async def split_users(split: str = Path(pattern="^(test|val)$", description="test or val"),
                          model: Optional[str] = Query(None, description="whose dataset (default: the first)")):
        """How many users the model's dataset split holds (numbered 1..count)."""
        return {"split": split, "count": models[pick(model)].split_size(split)}

    @app.get("/users/{split}/{number}")
    async def dataset_user(split: str = Path(pattern="^(test|val)$", description="test or val"),
                           number: str = Path(description="1..count, or 'random'", examples=["1", "random"]),
                           model: Optional[str] = Query(None, description="whose dataset (default: the first)")):
        """A user of the dataset split: own id (where the dataset has user_ids.tsv), history with names
        (oldest first) and the held-out next item."""
        recommender = models[pick(model)]
        count = recommender.split_size(split)
        if number == "random" and count:
            number = str(random.randint(1, count))
        if not number.isdigit() or not 1 <= int(number) <= count:
            raise HTTPException(422, f"user number must be 1..{count} of {split}, or 'random'; got {number!r}")
        user = recommender.dataset_user(split, int(number))
        return {"split": split, "number": int(number), **user, "sequence_length": recommender.model.sequence_length}

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        content_type = request.headers.get("content-type", "")
        if request.method == "POST" and not content_type.startswith("application/json"):
            return JSONResponse(status_code=415, content={
                "detail": f"send the body as JSON with the header content-type: application/json "
                          f"(got {content_type or 'no content type'!r})"})
        # The offending input is left out: echoing a 10 MB history back helps nobody.
        errors = [{key: value for key, value in e.items() if key not in ("input", "ctx", "url")}
                  for e in error.errors()]
        return JSONResponse(status_code=422, content={"detail": errors})

    @app.exception_handler(GSASRecError)
    async def user_error(_, error: GSASRecError):
        return JSONResponse(status_code=422, content={"detail": str(error)})

    return BodyLimit(app, max_body_bytes)


def offline_docs_app(**settings):
    """A FastAPI app whose /docs (Swagger UI) and /redoc load their scripts from this server: the assets
    of the fastapi-offline package, not a CDN."""
    from fastapi_offline import FastAPIOffline

    return FastAPIOffline(**settings)


def page_file(name: str) -> str:
    """A file of the explorer page, shipped in the package (gsasrec/page/)."""
    return resources.files("gsasrec").joinpath("page", name).read_text(encoding="utf-8")


def request_examples(recommender: Recommender) -> dict:
    """Requests that the served model answers, with its own item ids (the OpenAPI examples of /docs)."""
    items = recommender.catalog.external[:4]
    named = next((name for name in recommender.catalog.names if name), None)
    return {"recommend": {"history": items[:3], "k": 5},
            "batch": {"histories": [items[:2], items[2:4]], "k": 3},
            "item": str(items[0]),
            "query": named.split()[0] if named else str(items[0])}


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


def serve(models: Union[Recommender, dict[str, Recommender]], host: str = "127.0.0.1", port: int = 8000,
          **limits) -> None:
    import uvicorn

    uvicorn.run(create_app(models, **limits), host=host, port=port, log_level="info")
