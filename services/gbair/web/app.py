"""The review app's routes: sign-in, jobs, a job's progress and rounds, its suspects, one suspect's
evidence and the decision on it, exports and re-runs. Every page is rendered on the server; the few
lines of script in static/review.js add keyboard shortcuts and live progress."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import anyio
import grpc
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from gbair.client import GbairClient
from gbair.v1 import gbair_pb2 as pb
from gbair.web import coordinator as calls
from gbair.web.coordinator import Coordinator, SuspectFilter
from gbair.web.plots import accuracy_svg
from gbair.web.session import CSRF_FIELD, CsrfRefused, Sessions

HERE = Path(__file__).parent
SUSPECTS_PAGE_SIZE = 50
# Job pages following a running job at once, each waiting on a thread.
PROGRESS_STREAMS = anyio.CapacityLimiter(200)
ENDED = (pb.SUCCEEDED, pb.FAILED, pb.CANCELLED)

ORDERS = {"rank": pb.SUSPECT_ORDER_UNSPECIFIED, "score-desc": pb.SCORE_DESCENDING, "score-asc": pb.SCORE_ASCENDING}
# The review status filter: "any" is no filter; "undecided" is the API's DECISION_UNSPECIFIED.
STATUSES = {"undecided": pb.DECISION_UNSPECIFIED, "accepted": pb.ACCEPT, "rejected": pb.REJECT, "relabelled": pb.SET_LABEL}
DECISIONS = {"accept": pb.ACCEPT, "reject": pb.REJECT, "set_label": pb.SET_LABEL}

# What a user is told for each way a coordinator call can fail, with the page's HTTP status.
FAILURES = {
    grpc.StatusCode.UNAVAILABLE: (503, "The coordinator at {target} cannot be reached. Check that it is running, then reload this page."),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "The coordinator at {target} did not answer in time. Reload this page to try again."),
    grpc.StatusCode.PERMISSION_DENIED: (403, "Your token is read-only: it may look at everything but change nothing."),
    grpc.StatusCode.NOT_FOUND: (404, "Not found: {details}"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "The coordinator at {target} does not offer this yet; it runs an older gbair."),
    grpc.StatusCode.INVALID_ARGUMENT: (400, "The coordinator refused the request: {details}"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "Not possible now: {details}"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "The coordinator is busy: {details} Try again in a moment."),
}


# Pages load only their own stylesheet and script (the probability bars set a CSS variable in a style
# attribute), and no other site may frame them: a framed page could be clicked into decisions.
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; style-src-attr 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """ASGI middleware adding SECURITY_HEADERS to every response; plain ASGI rather than Starlette's
    BaseHTTPMiddleware, which would stand between a progress stream and the browser's disconnect."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class NotSignedIn(Exception):
    pass


class PageNotFound(Exception):
    """Something the coordinator has, but not where the URL points (an example that is no suspect)."""


@dataclass
class User:
    client: GbairClient
    read_only: bool


def queue_params(chosen: SuspectFilter) -> dict[str, str]:
    """A filter as the query parameters of the suspects page, which links and forms carry along."""
    params = {"order": next(name for name, value in ORDERS.items() if value == chosen.order)}
    if chosen.round is not None:
        params["round"] = str(chosen.round)
    if chosen.given_label is not None:
        params["given"] = chosen.given_label
    if chosen.decision is not None:
        params["status"] = next(name for name, value in STATUSES.items() if value == chosen.decision)
    return params


def parse_filter(order: str = "rank", round: str = "", given: str = "", status: str = "") -> SuspectFilter:
    return SuspectFilter(
        order=ORDERS.get(order, pb.SUSPECT_ORDER_UNSPECIFIED),
        round=int(round) if round.strip().isdigit() else None,
        given_label=given or None,
        decision=STATUSES.get(status),
    )


def create_app(coordinator: Coordinator, sessions: Sessions) -> FastAPI:
    app = FastAPI(title="gbair review", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(
        status_name=lambda status: pb.JobStatus.Name(status).lower(),
        decision_name=lambda decision: {pb.ACCEPT: "accepted", pb.REJECT: "rejected", pb.SET_LABEL: "relabelled"}.get(decision, ""),
        urlencode=urlencode,
        query=lambda params, **extra: urlencode({**params, **extra}),
        CSRF_FIELD=CSRF_FIELD,
        SUCCEEDED=pb.SUCCEEDED,
    )

    def render(request: Request, name: str, status_code: int = 200, user: User | None = None, **context) -> HTMLResponse:
        """A page, with the session's CSRF token for its forms (a new one where the session has none)."""
        csrf = sessions.csrf(request)
        fresh = csrf is None
        if fresh:
            csrf = sessions.new_csrf()
        context.update(csrf=csrf, target=coordinator.target, signed_in=user is not None or sessions.token(request) is not None,
                       read_only=user is not None and user.read_only)
        response = templates.TemplateResponse(request, name, context, status_code=status_code)
        if fresh:
            sessions.set_csrf(request, response, csrf)
        return response

    @contextmanager
    def signed_in(request: Request) -> Iterator[User]:
        token = sessions.token(request)
        if token is None:
            raise NotSignedIn()
        with coordinator.client(token) as client:
            yield User(client, coordinator.is_read_only(client, token))

    async def checked_form(request: Request) -> dict[str, str]:
        form = await request.form()
        sessions.check_csrf(request, form.get(CSRF_FIELD))
        return {key: value for key, value in form.items() if isinstance(value, str)}

    def decide_and_follow(request: Request, job_id: str, chosen: SuspectFilter, example: str, decision: int,
                          label: str) -> str | None:
        """Record the decision; return the suspect after this one in the queue as it was before, if any.
        The queue is read first: a queue of undecided suspects loses this one once it is decided."""
        with signed_in(request) as user:
            queue = calls.review_queue(user.client, job_id, chosen).suspects
            calls.decide(user.client, job_id, example, decision, label if decision == pb.SET_LABEL else "")
        position = _position(queue, example)
        if position is None:  # sent twice: the first one took it out of the queue
            return queue[0].example_id if queue else None
        return queue[position + 1].example_id if position + 1 < len(queue) else None

    # --- failures ---------------------------------------------------------------------------------

    @app.exception_handler(NotSignedIn)
    def to_sign_in(request: Request, error: NotSignedIn) -> Response:
        return RedirectResponse("/sign-in", status_code=303)

    @app.exception_handler(CsrfRefused)
    def refuse_forgery(request: Request, error: CsrfRefused) -> Response:
        return render(request, "error.html", 403, message="This form is out of date or did not come from this app. "
                      "Reload the page and send it again.")

    @app.exception_handler(PageNotFound)
    def not_found(request: Request, error: PageNotFound) -> Response:
        return render(request, "error.html", 404, message=str(error))

    @app.exception_handler(grpc.RpcError)
    def coordinator_failed(request: Request, error: grpc.RpcError) -> Response:
        if error.code() == grpc.StatusCode.UNAUTHENTICATED:
            response = RedirectResponse("/sign-in?expired=1", status_code=303)
            sessions.sign_out(response)
            return response
        status, message = FAILURES.get(error.code(), (502, "The coordinator failed: {details}"))
        return render(request, "error.html", status, message=message.format(target=coordinator.target, details=error.details()))

    # --- sign-in ----------------------------------------------------------------------------------

    @app.get("/healthz", include_in_schema=False)
    def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/")
    def home() -> Response:
        return RedirectResponse("/jobs", status_code=303)

    @app.get("/sign-in")
    def sign_in_page(request: Request, expired: bool = False) -> Response:
        message = "Your token was not accepted (it may have expired or been revoked). Sign in again." if expired else None
        return render(request, "sign_in.html", message=message)

    @app.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        form = await checked_form(request)
        token = form.get("token", "").strip()
        if not token:
            return render(request, "sign_in.html", 400, message="Paste your gbair token.")
        if not await run_in_threadpool(_token_is_known, coordinator, token):
            return render(request, "sign_in.html", 401, message="The coordinator does not know this token.")
        response = RedirectResponse("/jobs", status_code=303)
        sessions.sign_in(request, response, token)
        return response

    @app.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        await checked_form(request)
        response = RedirectResponse("/sign-in", status_code=303)
        sessions.sign_out(response)
        return response

    # --- jobs -------------------------------------------------------------------------------------

    @app.get("/jobs")
    def jobs(request: Request) -> Response:
        with signed_in(request) as user:
            return render(request, "jobs.html", user=user, jobs=calls.list_jobs_newest_first(user.client))

    @app.get("/jobs/{job_id}")
    def job(request: Request, job_id: str) -> Response:
        with signed_in(request) as user:
            job = user.client.get_job(job_id)
            dataset = calls.dataset_of(user.client, job)
            return render(request, "job.html", user=user, job=job, dataset=dataset, live=job.status not in ENDED,
                          plot=accuracy_svg(job.rounds, job.best_round if job.HasField("best_round") else None),
                          rerun_request_id=uuid.uuid4().hex)

    @app.get("/jobs/{job_id}/progress")
    def progress(request: Request, job_id: str) -> Response:
        """Server-sent events: the job's WatchJob events as JSON, then `end` when the job has ended."""
        token = sessions.token(request)
        if token is None:
            raise NotSignedIn()
        client = coordinator.client(token)
        return StreamingResponse(_progress_events(client, job_id), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    # --- review -----------------------------------------------------------------------------------

    @app.get("/jobs/{job_id}/suspects")
    def suspects(request: Request, job_id: str, order: str = "rank", round: str = "", given: str = "", status: str = "",
                 page: str = "", done: str = "") -> Response:
        chosen = parse_filter(order, round, given, status)
        with signed_in(request) as user:
            job = user.client.get_job(job_id)
            listed = calls.suspect_page(user.client, job_id, chosen, SUSPECTS_PAGE_SIZE, page)
            dataset = calls.dataset_of(user.client, job)
            return render(request, "suspects.html", user=user, job=job, page=listed, chosen=chosen,
                          labels=listed.label_names or (list(dataset.label_names) if dataset else []),
                          queue=queue_params(chosen), page_token=page, done=done)

    @app.get("/jobs/{job_id}/evidence")
    def evidence(request: Request, job_id: str, example: str, order: str = "rank", round: str = "", given: str = "",
                 status: str = "", done: str = "") -> Response:
        chosen = parse_filter(order, round, given, status)
        with signed_in(request) as user:
            job = user.client.get_job(job_id)
            queue = calls.review_queue(user.client, job_id, chosen)
            position = _position(queue.suspects, example)
            if position is not None:
                suspect = queue.suspects[position]
            else:  # opened from elsewhere, or decided out of an "undecided" queue
                suspect = _find(calls.review_queue(user.client, job_id, SuspectFilter()).suspects, example)
            if suspect is None:
                raise PageNotFound(f"Example '{example}' is not one of job {job_id}'s suspects.")
            dataset = calls.dataset_of(user.client, job)
            try:
                explanation, evidence_error = calls.evidence(user.client, job_id, suspect), None
            except grpc.RpcError as error:
                if error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAVAILABLE):
                    raise
                explanation, evidence_error = None, error.details()
            neighbours = {}
            if position is not None:
                if position > 0:
                    neighbours["previous"] = queue.suspects[position - 1].example_id
                if position + 1 < len(queue.suspects):
                    neighbours["next"] = queue.suspects[position + 1].example_id
            return render(request, "evidence.html", user=user, job=job, suspect=suspect, explanation=explanation,
                          evidence_error=evidence_error, labels=queue.label_names or (list(dataset.label_names) if dataset else []),
                          queue=queue_params(chosen), neighbours=neighbours, position=position, queue_size=len(queue.suspects),
                          done=done)

    @app.post("/jobs/{job_id}/decisions")
    async def decide(request: Request, job_id: str) -> Response:
        form = await checked_form(request)
        decision = DECISIONS.get(form.get("decision", ""))
        example = form.get("example", "")
        if decision is None or not example:
            return render(request, "error.html", 400, message="Choose accept, reject or a label for one suspect.")
        chosen = parse_filter(form.get("order", "rank"), form.get("round", ""), form.get("given", ""), form.get("status", ""))
        following = await run_in_threadpool(decide_and_follow, request, job_id, chosen, example, decision, form.get("label", ""))
        params = queue_params(chosen)
        if following is None:
            return RedirectResponse(f"/jobs/{job_id}/suspects?{urlencode({**params, 'done': example})}", status_code=303)
        return RedirectResponse(f"/jobs/{job_id}/evidence?{urlencode({**params, 'example': following, 'done': example})}", status_code=303)

    # --- export and re-run ----------------------------------------------------------------------

    @app.get("/jobs/{job_id}/export/{what}.zip")
    def export(request: Request, job_id: str, what: str) -> Response:
        if what not in calls.EXPORTS:
            return render(request, "error.html", 404, message=f"There is no export named '{what}'.")
        token = sessions.token(request)
        if token is None:
            raise NotSignedIn()
        client = coordinator.client(token)
        try:
            chunks = calls.export_chunks(client, job_id, what)
        except grpc.RpcError:
            client.close()
            raise
        return StreamingResponse(calls.zipped(chunks, f"{job_id}-{what}"), media_type="application/zip",
                                 headers={"Content-Disposition": f'attachment; filename="gbair-{job_id}-{what}.zip"'})

    @app.post("/jobs/{job_id}/rerun")
    async def rerun(request: Request, job_id: str) -> Response:
        form = await checked_form(request)

        def run() -> pb.Job:
            with signed_in(request) as user:
                # The id comes from the page, so that the form sent twice starts one job, not two.
                return user.client.rerun_with_decisions(job_id, form.get("request_id") or None)

        started = await run_in_threadpool(run)
        return RedirectResponse(f"/jobs/{started.job_id}", status_code=303)

    return app


def _token_is_known(coordinator: Coordinator, token: str) -> bool:
    with coordinator.client(token) as client:
        try:
            client.stub.ListJobs(pb.ListJobsRequest(page_size=1), metadata=client.metadata, timeout=client.timeout_s)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                return False
            raise
    return True


def _position(suspects: list[pb.Suspect], example_id: str) -> int | None:
    return next((k for k, s in enumerate(suspects) if s.example_id == example_id), None)


def _find(suspects: list[pb.Suspect], example_id: str) -> pb.Suspect | None:
    position = _position(suspects, example_id)
    return suspects[position] if position is not None else None


async def _progress_events(client: GbairClient, job_id: str) -> AsyncIterator[str]:
    """WatchJob's events as server-sent events. Each wait for the next event runs on a thread of its own
    limiter (an open job page holds one for as long as it is open, which must not starve the pages); a
    browser that goes away abandons the wait and cancels the call, which ends it."""
    stream = client.watch(job_id)
    try:
        while True:
            event = await anyio.to_thread.run_sync(next, stream, None, abandon_on_cancel=True, limiter=PROGRESS_STREAMS)
            if event is None:
                break
            yield f"data: {json.dumps(_progress(event))}\n\n"
        yield "event: end\ndata: {}\n\n"
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.CANCELLED:
            yield f"event: failure\ndata: {json.dumps({'message': error.details() or error.code().name})}\n\n"
    finally:
        stream.cancel()
        client.close()


def _progress(event: pb.JobEvent) -> dict:
    return {"status": pb.JobStatus.Name(event.status).lower(), "phase": event.phase, "round": event.round,
            "fraction": round(event.fraction, 4), "message": event.message}
