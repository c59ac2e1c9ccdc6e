"""The review app (`gbair web`) in a real headless Chromium, against a real coordinator that has run a
small job on the tiny model. One coordinator, one app server and one browser serve the whole module (one
xdist group). Tests that need a signed-in browser ask for `writer`, which signs in with the write token
when the test before left it otherwise; the decision tests build on each other, in file order.

The tests marked `review_api` need the coordinator's side of the review API (probabilities, filters and
order, evidence against the trusted set, RerunWithDecisions); the others pass on a coordinator that
leaves those fields empty."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from urllib.parse import urlencode

import pytest

from gbair.client import GbairClient
from gbair.coordinator.local import LocalCoordinator, free_port
from gbair.v1 import gbair_pb2 as pb
from job_waits import wait_for_status
from labeled_files import write_dataset_files

pytestmark = pytest.mark.xdist_group("web")

WRITE_TOKEN = "web-tests-writer-token-0123456789"
READ_TOKEN = "web-tests-reader-token-0123456789"
PAGE_WAIT_S = 30
# Where to write the screenshots of docs/review.md, when asked (GBAIR_REVIEW_SCREENSHOTS=docs/review).
SCREENSHOTS = os.environ.get("GBAIR_REVIEW_SCREENSHOTS")


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory, redis_url, tiny_model_dir):
    """A coordinator with a write and a read-only token for the same tenant."""
    settings = {
        "redis_url": redis_url,
        "redis_prefix": "web-tests",
        "models": [str(tiny_model_dir)],
        "backend": "local",
        "torch_threads": 1,
        "tokens": [{"token": WRITE_TOKEN, "tenant": "reviewers"},
                   {"token": READ_TOKEN, "tenant": "reviewers", "read_only": True}],
        "job_defaults": {
            "model": {"num_virtual_tokens": 4, "max_length": 32},
            "train": {"epochs": 1, "batch_size": 8, "learning_rate": 0.03},
            "recovery": {"rounds": 2, "budget": 4, "patience": 3},
        },
    }
    with LocalCoordinator(tmp_path_factory.mktemp("web-coordinator") / "state", settings) as started:
        yield started


@pytest.fixture(scope="module")
def api(coordinator):
    with GbairClient(coordinator.target, WRITE_TOKEN) as client:
        yield client


@pytest.fixture(scope="module")
def dataset(api, tmp_path_factory) -> pb.Dataset:
    files = write_dataset_files(tmp_path_factory.mktemp("web-data"), train=32, validation=16, test=8)
    return api.upload_dataset("reviews", files["train"], files["validation"], files["test"])


@pytest.fixture(scope="module")
def job_id(api, dataset) -> str:
    job = api.submit(pb.JobSpec(dataset_id=dataset.dataset_id, corrupt=0.25, seed=1))
    wait_for_status(api, job.job_id, pb.SUCCEEDED, timeout_s=300)
    return job.job_id


def start_web(target: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GBAIR_")}
    with log.open("ab") as output:
        process = subprocess.Popen([sys.executable, "-m", "gbair.cli", "web", "--target", target, "--port", str(port)],
                                   stdout=output, stderr=subprocess.STDOUT, env=environment)
    deadline = time.monotonic() + 60
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            pass
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the review app did not start"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def web(coordinator, tmp_path_factory):
    """`gbair web` on the coordinator, as a user starts it; its base URL. No page may fail with a traceback."""
    log = tmp_path_factory.mktemp("web") / "web.log"
    process, url = start_web(coordinator.target, log)
    yield url
    process.terminate()
    process.wait(timeout=30)
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium through chromedriver. Missing, they fail the tests instead of skipping them:
    scripts/setup.sh installs them."""
    from selenium import webdriver

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("the browser tests need Debian's chromium and chromium-driver: run scripts/setup.sh "
                    "or apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(argument)
    session = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    session.downloads = tmp_path_factory.mktemp("downloads")
    session.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(session.downloads)})
    yield session
    session.quit()


@pytest.fixture
def writer(browser, web, job_id):
    """The browser, signed in with the write token (whatever the test before left)."""
    if cookies(browser).get("gbair_token") != WRITE_TOKEN:
        sign_in(browser, web, WRITE_TOKEN)
    return browser


def wait_for(condition, what: str, timeout_s: float = PAGE_WAIT_S):
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def text_of(browser, selector: str) -> str | None:
    """The element's text, read in the page in one step, so that a reload in between cannot make it stale."""
    return browser.execute_script("const e = document.querySelector(arguments[0]); return e && e.textContent", selector)


def find(browser, selector: str):
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, selector)


def sign_in(browser, web: str, token: str) -> None:
    browser.get(f"{web}/sign-in")
    find(browser, "#token")[0].send_keys(token)
    find(browser, "form.sign-in button")[0].click()
    wait_for(lambda: "/jobs" in browser.current_url or find(browser, "#problem"), "the sign-in answer")


def press(browser, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    before = browser.current_url
    ActionChains(browser).send_keys(key).perform()
    wait_for(lambda: browser.current_url != before, f"the page after pressing {key}")


def decisions(api: GbairClient, job_id: str) -> dict[str, tuple[int, str]]:
    return {s.example_id: (s.decision, s.decided_label) for s in api.suspects(job_id) if s.decision}


def cookies(browser) -> dict[str, str]:
    return {c["name"]: c["value"] for c in browser.get_cookies()}


def post(web: str, path: str, fields: dict[str, str], cookie_values: dict[str, str]) -> http.client.HTTPResponse:
    """A form POST from outside the browser, with the cookies given and nothing else."""
    connection = http.client.HTTPConnection(web.removeprefix("http://"), timeout=30)
    connection.request("POST", path, body=urlencode(fields), headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": "; ".join(f"{k}={v}" for k, v in cookie_values.items()),
    })
    return connection.getresponse()


def screenshot(browser, name: str) -> None:
    if not SCREENSHOTS:
        return
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    for width, height, size in ((1280, 800, "desktop"), (390, 844, "mobile")):
        browser.set_window_size(width, height)
        # The page's full height, so that the picture shows the whole page, not only its first screen.
        full = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(width, min(max(height, full + 140), 4000))
        browser.save_screenshot(str(folder / f"{name}-{size}.png"))
    browser.set_window_size(1280, 800)


# --- sign-in --------------------------------------------------------------------------------------


def test_pages_may_not_be_framed_or_load_anything_but_their_own_files(web):
    connection = http.client.HTTPConnection(web.removeprefix("http://"), timeout=30)
    connection.request("GET", "/sign-in")
    answer = connection.getresponse()
    policy = answer.getheader("Content-Security-Policy")
    assert answer.status == 200 and "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
    assert answer.getheader("X-Content-Type-Options") == "nosniff"


def test_an_unknown_token_is_refused_at_sign_in(browser, web, job_id):
    sign_in(browser, web, "not-a-token-the-coordinator-knows")
    assert browser.current_url.endswith("/sign-in")
    assert "does not know this token" in find(browser, "#problem")[0].text
    assert "not-a-token" not in browser.current_url


def test_signed_in_the_jobs_and_the_job_page_show_status_rounds_and_plot(browser, web, job_id, api):
    sign_in(browser, web, WRITE_TOKEN)
    assert browser.current_url == f"{web}/jobs"
    token_cookie = next(c for c in browser.get_cookies() if c["name"] == "gbair_token")
    assert token_cookie["httpOnly"] and token_cookie["sameSite"] == "Strict"
    assert WRITE_TOKEN not in browser.current_url
    rows = find(browser, "#jobs tbody tr")
    assert len(rows) == 1 and job_id in rows[0].text and "succeeded" in rows[0].text
    screenshot(browser, "jobs")

    find(browser, f'a[href="/jobs/{job_id}"]')[0].click()
    wait_for(lambda: find(browser, "#rounds"), "the job page")
    job = api.get_job(job_id)
    assert len(find(browser, "#rounds tbody tr")) == len(job.rounds) == 3
    # The paired test against round 0: empty for round 0 itself, the API's value for the others.
    p_values = [cell.text for cell in find(browser, "#rounds tbody td:nth-child(4)")]
    assert p_values == [""] + [f"{r.val_change_p_value:.2g}" for r in job.rounds[1:]]
    # Each round's two trainings, and which one is its model, in the validation cell's tooltip.
    titles = [cell.get_attribute("title") for cell in find(browser, "#rounds tbody td:nth-child(3)")]
    assert titles == [
        f"mean of 2 trainings: {r.val_accuracies[0]:.3f}, {r.val_accuracies[1]:.3f}; "
        f"the round's model is training {r.model_training + 1}"
        for r in job.rounds
    ]
    assert find(browser, "#status")[0].text == "succeeded"
    assert len(find(browser, "svg.plot circle.validation")) == 3
    assert find(browser, "#rerun")  # a write token may re-run
    screenshot(browser, "job")


# --- review ---------------------------------------------------------------------------------------


def test_the_suspects_page_lists_every_suspect_with_text_labels_score_and_decision(writer, browser, web, job_id, api):
    browser.get(f"{web}/jobs/{job_id}/suspects")
    expected = list(api.suspects(job_id))
    rows = find(browser, "#suspects tbody tr")
    assert [r.get_attribute("data-example") for r in rows] == [s.example_id for s in expected]
    assert expected[0].text in rows[0].text and expected[0].given_label in rows[0].text
    assert "undecided" in rows[0].text


def test_a_reviewer_accepts_rejects_and_sets_a_label_from_the_keyboard(writer, browser, web, job_id, api):
    queue = [s.example_id for s in api.suspects(job_id)]
    browser.get(f"{web}/jobs/{job_id}/suspects")
    press(browser, "j")  # starts the queue at its first suspect
    assert find(browser, "#example-id")[0].text == queue[0]
    wait_for(lambda: find(browser, "#opponents tbody tr") or find(browser, "#evidence-problem"), "the evidence")
    assert not find(browser, "#evidence-problem"), find(browser, "#evidence-problem")[0].text
    assert find(browser, "#opponents tbody tr") and find(browser, "#proponents tbody tr")
    screenshot(browser, "evidence")

    press(browser, "a")
    assert find(browser, "#example-id")[0].text == queue[1]
    assert queue[0] in find(browser, "#recorded")[0].text
    press(browser, "r")
    assert find(browser, "#example-id")[0].text == queue[2]
    press(browser, "k")  # back to the second, now rejected
    assert find(browser, "#example-id")[0].text == queue[1] and "rejected" in find(browser, "#decision")[0].text
    press(browser, "j")
    press(browser, "2")  # the second label of the data set: "pos"
    assert decisions(api, job_id) == {queue[0]: (pb.ACCEPT, ""), queue[1]: (pb.REJECT, ""), queue[2]: (pb.SET_LABEL, "pos")}


def test_the_buttons_record_the_same_decisions_with_the_mouse(writer, browser, web, job_id, api):
    example = list(api.suspects(job_id))[3].example_id
    browser.get(f"{web}/jobs/{job_id}/evidence?example={example}")
    find(browser, "#reject")[0].click()
    wait_for(lambda: find(browser, "#recorded"), "the next suspect")
    assert decisions(api, job_id)[example] == (pb.REJECT, "")


def test_a_decision_sent_twice_is_recorded_once(writer, browser, web, job_id, api):
    example = list(api.suspects(job_id))[4].example_id
    before = decisions(api, job_id)
    fields = {"csrf": cookies(browser)["gbair_csrf"], "example": example, "decision": "set_label", "label": "neg"}
    for _ in range(2):
        answer = post(web, f"/jobs/{job_id}/decisions", fields, cookies(browser))
        assert answer.status == 303, answer.read()
    assert decisions(api, job_id) == {**before, example: (pb.SET_LABEL, "neg")}
    browser.get(f"{web}/jobs/{job_id}/suspects")
    screenshot(browser, "suspects")  # with the decisions so far


def test_a_post_without_the_sessions_csrf_token_is_refused(writer, browser, web, job_id, api):
    example = list(api.suspects(job_id))[5].example_id
    fields = {"example": example, "decision": "accept"}
    session = cookies(browser)
    assert post(web, f"/jobs/{job_id}/decisions", fields, session).status == 403
    assert post(web, f"/jobs/{job_id}/decisions", {**fields, "csrf": "forged.token"}, session).status == 403
    # A token that is not the session's: another sign-in's cookie, signed by the app, but not this one.
    other = session["gbair_csrf"].replace(session["gbair_csrf"][0], "x" if session["gbair_csrf"][0] != "x" else "y", 1)
    assert post(web, f"/jobs/{job_id}/decisions", {**fields, "csrf": other}, session).status == 403
    assert example not in decisions(api, job_id)


# --- export ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["dataset", "adapter"])
def test_the_exports_download_as_zips(writer, browser, web, job_id, what):
    browser.get(f"{web}/jobs/{job_id}")
    find(browser, f"#export-{what}")[0].click()
    path = browser.downloads / f"gbair-{job_id}-{what}.zip"
    wait_for(path.is_file, f"the {what} download", timeout_s=120)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert names and all(n.startswith(f"{job_id}-{what}/") for n in names)
        if what == "dataset":
            (cleaned,) = names
            assert b"id,text,label" in archive.read(cleaned).replace(b"\r", b"")


def test_what_the_coordinator_does_not_have_is_a_page_that_says_so(writer, browser, web, job_id):
    browser.get(f"{web}/jobs/{job_id}/evidence?example=v0")  # a validation example, no suspect
    assert "is not one of job" in find(browser, "#problem")[0].text
    browser.get(f"{web}/jobs/no-such-job/export/dataset.zip")
    assert "Not found" in find(browser, "#problem")[0].text
    assert not list(browser.downloads.glob("gbair-no-such-job-*"))


# --- what a session may do ------------------------------------------------------------------------


def test_a_read_only_token_sees_everything_and_can_change_nothing(writer, browser, web, job_id, api):
    browser.get(f"{web}/jobs")
    find(browser, ".sign-out button")[0].click()
    wait_for(lambda: browser.current_url.endswith("/sign-in"), "the sign-in page")
    sign_in(browser, web, READ_TOKEN)
    assert find(browser, ".badge")[0].text == "read-only"
    example = list(api.suspects(job_id))[5].example_id
    browser.get(f"{web}/jobs/{job_id}/evidence?example={example}")
    assert "read-only token" in find(browser, "#read-only-notice")[0].text
    assert not find(browser, "#accept") and not find(browser, ".set-label")
    wait_for(lambda: find(browser, "#opponents tbody tr"), "the evidence")
    browser.get(f"{web}/jobs/{job_id}")
    assert find(browser, "#export-dataset") and not find(browser, "#rerun")

    before = decisions(api, job_id)
    answer = post(web, f"/jobs/{job_id}/decisions", {"csrf": cookies(browser)["gbair_csrf"], "example": example,
                                                      "decision": "accept"}, cookies(browser))
    assert answer.status == 403 and b"read-only" in answer.read()
    assert decisions(api, job_id) == before
    sign_in(browser, web, WRITE_TOKEN)


def test_a_token_the_coordinator_no_longer_accepts_sends_back_to_sign_in(writer, browser, web, job_id):
    browser.get(f"{web}/jobs")
    browser.delete_cookie("gbair_token")
    browser.add_cookie({"name": "gbair_token", "value": "revoked-token-0123456789", "path": "/"})
    browser.get(f"{web}/jobs/{job_id}")
    assert browser.current_url == f"{web}/sign-in?expired=1"
    assert "Sign in again" in find(browser, "#problem")[0].text
    assert "gbair_token" not in cookies(browser)
    sign_in(browser, web, WRITE_TOKEN)


def test_a_coordinator_that_is_down_shows_a_banner_not_a_traceback(browser, job_id, tmp_path):
    process, unreachable = start_web(f"127.0.0.1:{free_port()}", tmp_path / "web.log")
    try:
        sign_in(browser, unreachable, WRITE_TOKEN)
        banner = find(browser, "#problem")[0].text
        assert "cannot be reached" in banner and "Traceback" not in browser.page_source
        browser.add_cookie({"name": "gbair_token", "value": WRITE_TOKEN, "path": "/"})
        browser.get(f"{unreachable}/jobs/{job_id}/suspects")
        assert "cannot be reached" in find(browser, "#problem")[0].text
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_running_jobs_page_follows_its_progress_until_it_ends(writer, browser, web, api, dataset):
    # Enough epochs that the page opens while the job still runs.
    job = api.submit(pb.JobSpec(dataset_id=dataset.dataset_id, rounds=1, seed=2, epochs=40))
    browser.get(f"{web}/jobs/{job.job_id}")
    if text_of(browser, "#status") != "succeeded":
        # The first event replaces the placeholder, unless the job ends first and the page reloads.
        wait_for(lambda: "waiting" not in (text_of(browser, ".progress-text") or ""), "the first progress event")
    wait_for(lambda: text_of(browser, "#status") == "succeeded", "the job's end", timeout_s=300)
    assert len(find(browser, "#rounds tbody tr")) == len(api.get_job(job.job_id).rounds) >= 1
    # The events the page follows, read as the browser's EventSource reads them: every WatchJob event, then
    # `end`. (A job this small may end before the page first opens.)
    connection = http.client.HTTPConnection(web.removeprefix("http://"), timeout=30)
    connection.request("GET", f"/jobs/{job.job_id}/progress", headers={"Cookie": f"gbair_token={WRITE_TOKEN}"})
    answer = connection.getresponse()
    assert answer.status == 200 and answer.getheader("Content-Type").startswith("text/event-stream")
    events = answer.read().decode().strip().split("\n\n")
    phases = [json.loads(e.removeprefix("data: "))["phase"] for e in events[:-1]]
    assert phases[0] == "queued" and "round" in phases and phases[-1] == "succeeded"
    assert events[-1] == "event: end\ndata: {}"


# --- the coordinator's side of the review API -----------------------------------------------------


@pytest.mark.review_api
def test_suspects_sort_by_score_and_filter_by_round_label_and_decision(writer, browser, web, job_id, api):
    browser.get(f"{web}/jobs/{job_id}/suspects?order=score-desc")
    scores = [float(cell.text) for cell in find(browser, "#suspects td.score")]
    assert len(scores) == 8 and scores == sorted(scores, reverse=True)
    browser.get(f"{web}/jobs/{job_id}/suspects?order=score-asc&round=1")
    rows = find(browser, "#suspects tbody tr")
    assert len(rows) == 4 and all(r.text.startswith("1 ·") for r in rows)
    browser.get(f"{web}/jobs/{job_id}/suspects?given=pos")
    assert all("pos" == r.find_element("css selector", '[data-label="Given label"]').text for r in find(browser, "#suspects tbody tr"))
    browser.get(f"{web}/jobs/{job_id}/suspects?status=undecided")
    shown = {r.get_attribute("data-example") for r in find(browser, "#suspects tbody tr")}
    assert shown and not shown & set(decisions(api, job_id))


@pytest.mark.review_api
def test_suspects_show_probabilities_and_a_suggested_label(writer, browser, web, job_id):
    browser.get(f"{web}/jobs/{job_id}/suspects")
    row = find(browser, "#suspects tbody tr")[0]
    assert len(row.find_elements("css selector", ".probabilities li")) == 2
    assert row.find_element("css selector", '[data-label="Suggested"]').text in ("neg", "pos")


@pytest.mark.review_api
def test_the_evidence_names_the_models_prediction_for_each_trusted_example(writer, browser, web, job_id, api):
    # A suspect of the last round: its evidence comes from the model that flagged it, not the best round's.
    suspect = list(api.suspects(job_id))[-1]
    assert suspect.round > 0
    browser.get(f"{web}/jobs/{job_id}/evidence?example={suspect.example_id}")
    wait_for(lambda: find(browser, "#evidence-round"), "the evidence")
    assert find(browser, "#evidence-round")[0].text == f"round {suspect.round}"
    wait_for(lambda: find(browser, "#opponents tbody tr"), "the evidence")
    predictions = [r.find_element("css selector", '[data-label="Model predicts"]').text for r in find(browser, "#opponents tbody tr")]
    assert all(p.split()[0] in ("neg", "pos") for p in predictions)
    assert all(r.find_element("css selector", ".id").text.startswith("v") for r in find(browser, "#opponents tbody tr"))


@pytest.mark.review_api
def test_rerun_with_my_decisions_opens_the_new_job_with_its_parent(writer, browser, web, job_id):
    browser.get(f"{web}/jobs/{job_id}")
    find(browser, "#rerun")[0].click()
    # The new job runs, and its page reloads as its rounds are scored: each element is read in one step.
    wait_for(lambda: text_of(browser, "#parent") or text_of(browser, "#problem"), "the new job's page")
    assert text_of(browser, "#problem") is None, text_of(browser, "#problem")
    assert browser.current_url != f"{web}/jobs/{job_id}"
    assert job_id in wait_for(lambda: text_of(browser, "#parent"), "the new job's parent")
