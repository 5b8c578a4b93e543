"""Faults and load against a real stack of our own (Rasa REST channel + action server).

Processes are killed with SIGKILL, the store is made read-only or "full", the knowledge
base is overwritten with garbage, and 50 conversations talk at once. Every case asserts
that the person still gets a calm answer and that nothing acknowledged is lost; what was
tried and how it went is written to docs/RELIABILITY.md (tests/reliability_report.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import secrets
import signal
import sqlite3
import statistics
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import yaml
from conftest import make_stack
from reliability_report import model, record, section_fixture  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

_report = section_fixture("faults")

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())


def variants(response: str) -> set[str]:
    return {v["text"] for v in DOMAIN["responses"][response]}


def texts(replies: list[dict]) -> list[str]:
    return [r.get("text", "") for r in replies]


def joined(replies: list[dict]) -> str:
    return "\n".join(texts(replies))


def stored_events(stack, sender: str) -> list[tuple[str, dict]]:
    db = stack.settings.data_dir / "conversations.db"
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT type_name, data FROM events WHERE sender_id = ? ORDER BY id", (sender,)
        ).fetchall()
    return [(kind, json.loads(data)) for kind, data in rows]


def user_texts(stack, sender: str) -> list[str]:
    return [data.get("text") for kind, data in stored_events(stack, sender) if kind == "user"]


def requested_slot(stack, sender: str):
    slot = None
    for kind, data in stored_events(stack, sender):
        if kind == "slot" and data.get("name") == "requested_slot":
            slot = data.get("value")
    return slot


def contact_numbers() -> dict[str, str]:
    """name → phone of every 24/7 helpline in knowledge/contacts.yml."""
    from bot.knowledge.contacts import load_contacts

    contacts, _, _ = load_contacts(ROOT / "knowledge" / "contacts.yml")
    return {c.name: c.phone for c in contacts.values() if c.is_24_7 and c.phone}


def assert_calm_no_reply(replies: list[dict]) -> None:
    text = joined(replies)
    assert "can't look that up right now" in text
    numbers = contact_numbers()
    assert "999" in text
    helplines = [name for name, phone in numbers.items() if phone in text and name in text
                 and phone not in ("999", "101", "111", "18000")]
    assert len(helplines) >= 2, text


def log_of(stack, name: str) -> str:
    path = stack.log_dir / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory, model, knowledge_db):  # noqa: F811
    running = make_stack(tmp_path_factory.mktemp("faults"), model, knowledge_db)
    started = time.monotonic()
    running.start("rasa", "actions")
    print(f"\n[faults] stack up in {time.monotonic() - started:.1f}s")
    yield running
    running.stop_all()


def ensure_running(stack, *names: str) -> None:
    for name in names:
        process = stack.processes.get(name)
        if process is None or process.poll() is not None:
            stack.processes.pop(name, None)
            stack.start(name)


INFORM_DA = '/inform{"what_happened": "domestic_abuse"}'


# --- Process kills -----------------------------------------------------------------------


def test_rasa_killed_between_turns_conversation_continues(fault_stack):
    stack = fault_stack
    sender = secrets.token_hex(16)
    first = stack.say(sender, "hello")
    assert set(texts(first)) & variants("utter_greet")
    ask = stack.say(sender, "/report_crime_victim")
    assert set(texts(ask)) & variants("utter_ask_what_happened"), texts(ask)
    ask = stack.say(sender, INFORM_DA)
    assert set(texts(ask)) & variants("utter_ask_danger_now"), texts(ask)
    before = stored_events(stack, sender)
    assert requested_slot(stack, sender) == "danger_now"

    started = time.monotonic()
    stack.stop("rasa", signal.SIGKILL)
    stack.start("rasa")
    restart = time.monotonic() - started

    after = stored_events(stack, sender)
    assert after[: len(before)] == before  # every acknowledged turn is still there
    assert user_texts(stack, sender) == ["hello", "/report_crime_victim", INFORM_DA]
    # The next answer fits where the conversation was: the form goes on to the next question.
    reply = stack.say(sender, "/affirm")
    assert set(texts(reply)) & variants("utter_ask_nation"), texts(reply)
    assert user_texts(stack, sender)[-1] == "/affirm"
    record("faults", "kill -9 Rasa between turns",
           "3 turns (greet, start triage, choose domestic abuse) then SIGKILL of the Rasa server, restart, "
           "compare stored events, send the answer to the pending form question",
           1, f"ok: {len(before)} stored events unchanged, next reply is the triage form's next "
              f"question (restart took {restart:.0f}s)")


def test_rasa_killed_with_a_request_in_flight(fault_stack):
    """The action server is paused (SIGSTOP) so the request is surely in flight at the kill."""
    stack = fault_stack
    sender = secrets.token_hex(16)
    stack.say(sender, "hello")
    before = stored_events(stack, sender)
    outcome: dict = {}

    def send() -> None:
        try:
            outcome["replies"] = stack.say(sender, "/report_crime_victim", timeout=120)
        except requests.RequestException as error:
            outcome["error"] = type(error).__name__

    actions = stack.processes["actions"]
    os.killpg(actions.pid, signal.SIGSTOP)
    try:
        worker = threading.Thread(target=send)
        worker.start()
        time.sleep(3)
        assert worker.is_alive(), "the request should still be waiting for the action server"
        stack.stop("rasa", signal.SIGKILL)
        worker.join(30)
    finally:
        os.killpg(actions.pid, signal.SIGCONT)
    assert "error" in outcome, outcome  # not acknowledged: the client knows to send again
    stack.start("rasa")
    # Nothing half-written: the unacknowledged turn is either absent or whole.
    after = stored_events(stack, sender)
    assert after[: len(before)] == before
    assert user_texts(stack, sender) == ["hello"]
    # Sending again works, and the conversation is the same one.
    replies = stack.say(sender, "/report_crime_victim")
    assert set(texts(replies)) & variants("utter_ask_what_happened"), texts(replies)
    assert user_texts(stack, sender) == ["hello", "/report_crime_victim"]
    record("faults", "kill -9 Rasa with a request in flight",
           "action server paused with SIGSTOP so the turn is mid-way, SIGKILL Rasa, restart, "
           "send the same message again", 1,
           f"ok: client saw {outcome['error']} (not acknowledged), store kept the "
           f"{len(before)} earlier events and no partial turn; the resent message continued "
           "the same conversation")


def test_action_server_down_emergency_and_calm_no_reply(fault_stack):
    stack = fault_stack
    sender = secrets.token_hex(16)
    stack.stop("actions", signal.SIGKILL)
    try:
        danger = stack.say(sender, "hes outside the door with a knife")
        assert set(texts(danger)) & variants("utter_emergency"), texts(danger)
        assert "999" in danger[0]["text"] and "55" in danger[0]["text"]
        question = requests.post(stack.rest_url, json={
            "sender": sender, "message": "will the doctor tell the Home Office?"}, timeout=60)
        assert question.status_code == 200
        assert_calm_no_reply(question.json())
        assert "produced no reply" in log_of(stack, "rasa")
    finally:
        ensure_running(stack, "actions")
    answer = stack.say(sender, "will the doctor tell the Home Office?")
    assert "Source:" in joined(answer) or "don't have good information" in joined(answer)
    assert "can't look that up" not in joined(answer)
    record("faults", "action server killed",
           "SIGKILL the action server; send a danger message, then a knowledge question; "
           "restart the action server and ask again", 3,
           "ok: emergency numbers (999, 55) from the response-only rule; the question got "
           "HTTP 200 with \"I can't look that up right now\", 999 and >= 2 24/7 helplines "
           "from knowledge/contacts.yml (added by the REST channel when a turn has no reply); "
           "after the restart the same conversation got an article")


# --- Failing conversation store ----------------------------------------------------------


@contextmanager
def immutable(*paths: Path):
    """chattr +i: read-only even for root (tests run as root here, so chmod is not enough)."""
    done = []
    try:
        for path in paths:
            if path.exists():
                subprocess.run(["chattr", "+i", str(path)], check=True)
                done.append(path)
        yield
    finally:
        for path in done:
            subprocess.run(["chattr", "-i", str(path)], check=False)


def chattr_works(tmp: Path) -> bool:
    probe = tmp / "probe"
    probe.write_text("x")
    try:
        subprocess.run(["chattr", "+i", str(probe)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return False
    subprocess.run(["chattr", "-i", str(probe)], check=False)
    return True


def test_read_only_store_gets_503_with_calm_text(fault_stack, tmp_path):
    stack = fault_stack
    if not chattr_works(tmp_path):
        pytest.skip("chattr +i not available here")
    sender = secrets.token_hex(16)
    stack.say(sender, "hello")
    data = stack.settings.data_dir
    db = data / "conversations.db"
    targets = [db, Path(f"{db}-wal"), Path(f"{db}-shm"), data]
    mark = len(log_of(stack, "rasa"))
    with immutable(*targets):
        reply = requests.post(stack.rest_url, json={"sender": sender, "message": "thank you"},
                              timeout=60)
        assert reply.status_code == 503
        body = reply.json()
        assert "could not save that" in joined(body) and "999" in joined(body)
        log = log_of(stack, "rasa")[mark:]
        assert "could not be saved" in log or "Could not load a conversation" in log, log[-2000:]
    replies = stack.say(sender, "are you a robot?")
    assert set(texts(replies)) & variants("utter_iamabot")
    assert user_texts(stack, sender)[0] == "hello" and user_texts(stack, sender)[-1] == "are you a robot?"
    record("faults", "read-only DATA_DIR and conversations.db",
           "chattr +i on conversations.db, its -wal/-shm and DATA_DIR (root ignores chmod), "
           "send a message, then make them writable again", 1,
           "ok: HTTP 503 with the calm \"could not save that ... call 999\" text, a clear "
           "store error in the Rasa log; afterwards the same conversation went on")


def start_rasa_piped(stack) -> subprocess.Popen:
    """Start Rasa with its output through a pipe (copied to rasa.log by a thread), so a file
    size limit on the Rasa process limits its database, not its log."""
    from bot.stack import stack_commands, write_endpoints

    endpoints = write_endpoints(stack.settings, stack.log_dir / "endpoints.yml")
    command = {c.name: c for c in stack_commands(stack.settings, stack.model, endpoints)}["rasa"]
    process = subprocess.Popen(command.argv, cwd=ROOT, env=stack.env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)

    def copy() -> None:
        with open(stack.log_dir / "rasa.log", "ab") as log:
            for line in process.stdout:
                log.write(line)
                log.flush()

    threading.Thread(target=copy, daemon=True).start()
    stack.processes["rasa"] = process
    stack.wait_ready("rasa")
    return process


def test_full_disk_simulated_with_rlimit_fsize(fault_stack):
    stack = fault_stack
    stack.stop("rasa")
    process = start_rasa_piped(stack)
    sender = secrets.token_hex(16)
    try:
        stack.say(sender, "hello")
        db = stack.settings.data_dir / "conversations.db"
        with sqlite3.connect(db) as connection:  # empty the WAL: every write must grow a file
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        soft, hard = resource.prlimit(process.pid, resource.RLIMIT_FSIZE)
        mark = len(log_of(stack, "rasa"))
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (1, hard))
        try:
            reply = requests.post(stack.rest_url, json={"sender": sender, "message": "thank you"},
                                  timeout=60)
            time.sleep(0.5)
            log = log_of(stack, "rasa")[mark:]
        finally:
            resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (soft, hard))
        assert process.poll() is None  # SIGXFSZ is ignored by Python: no crash
        assert reply.status_code == 503, reply.text
        assert "could not save that" in joined(reply.json()) and "999" in joined(reply.json())
        assert "could not be saved" in log or "Could not load a conversation" in log, log[-2000:]
        replies = stack.say(sender, "are you a robot?")
        assert set(texts(replies)) & variants("utter_iamabot")
        assert user_texts(stack, sender)[-1] == "are you a robot?"
    except BaseException:
        stack.stop("rasa")  # a clean Rasa for the tests after this one
        stack.start("rasa")
        raise
    record("faults", "full disk (simulated)",
           "no loop mount here: RLIMIT_FSIZE=1 byte set on the running Rasa process with "
           "prlimit(2) after emptying the WAL, so every database write fails with EFBIG "
           "(SQLite: disk full); Rasa's output went through a pipe so its log still worked",
           1, "ok: HTTP 503 with the calm text, store error in the log, Rasa stayed up; after "
              "lifting the limit the conversation went on")


def test_corrupt_knowledge_base_gives_kb_down_message(fault_stack):
    from bot.actions.answers import KB_DOWN_TEXT

    stack = fault_stack
    kb = stack.settings.data_dir / "knowledge.db"
    good = kb.read_bytes()
    sender = secrets.token_hex(16)
    mark = len(log_of(stack, "actions"))
    try:
        kb.write_bytes(os.urandom(8192))
        reply = requests.post(stack.rest_url, json={
            "sender": sender, "message": "will the doctor tell the Home Office?"}, timeout=60)
        assert reply.status_code == 200
        assert KB_DOWN_TEXT in texts(reply.json())
        time.sleep(0.5)
        log = log_of(stack, "actions")[mark:]
        assert "Knowledge base unavailable" in log, log[-2000:]
    finally:
        tmp = kb.with_suffix(".restore")
        tmp.write_bytes(good)
        os.replace(tmp, kb)
    answer = stack.say(sender, "will the doctor tell the Home Office?")
    assert KB_DOWN_TEXT not in texts(answer)
    assert "Source:" in joined(answer) or "don't have good information" in joined(answer)
    record("faults", "corrupt knowledge.db",
           "overwrite DATA_DIR/knowledge.db with 8 KB of random bytes, ask a question, "
           "then restore the file", 1,
           "ok: calm KB-down message (\"can't look that up right now ... call 999\"), "
           "\"Knowledge base unavailable ... cannot be read\" in the action server log; "
           "after the restore answers came back without a restart")


# --- Load --------------------------------------------------------------------------------

CONVERSATIONS = 50
MESSAGES = 20
# Each message has a known answer, so every reply can be checked against what was sent.
SCRIPT = [("hello", "utter_greet"), ("are you a robot?", "utter_iamabot"),
          ("thank you", "utter_thank"), ("/greet", "utter_greet"),
          ("/bot_challenge", "utter_iamabot"), ("/thank", "utter_thank")]


def test_load_50_conversations_of_20_messages(fault_stack):
    import aiohttp

    stack = fault_stack
    ensure_running(stack, "rasa", "actions")
    expected = {name: variants(name) for _, name in SCRIPT}
    latencies: list[float] = []
    problems: list[str] = []
    mark = {name: len(log_of(stack, name)) for name in ("rasa", "actions")}

    async def conversation(session: aiohttp.ClientSession, index: int) -> None:
        sender = f"load-{index}-{secrets.token_hex(8)}"
        for turn in range(MESSAGES):
            message, response = SCRIPT[(turn + index) % len(SCRIPT)]
            started = time.perf_counter()
            try:
                async with session.post(stack.rest_url,
                                        json={"sender": sender, "message": message}) as reply:
                    status, body = reply.status, await reply.json(content_type=None)
            except Exception as error:  # counted, not raised: we want the whole picture
                problems.append(f"{sender} turn {turn}: {type(error).__name__}")
                continue
            latencies.append(time.perf_counter() - started)
            got = [r.get("text") for r in body] if isinstance(body, list) else body
            if status != 200 or not isinstance(body, list) or not set(got) & expected[response]:
                problems.append(f"{sender} turn {turn}: HTTP {status}, {got!r:.200}")

    async def run() -> float:
        connector = aiohttp.TCPConnector(limit=CONVERSATIONS)
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            started = time.perf_counter()
            await asyncio.gather(*(conversation(session, i) for i in range(CONVERSATIONS)))
            return time.perf_counter() - started

    elapsed = asyncio.run(run())
    total = CONVERSATIONS * MESSAGES
    logs = {name: log_of(stack, name)[mark[name]:] for name in mark}
    locked = sum(log.count("database is locked") for log in logs.values())
    busy = logs["rasa"].count("Conversation store busy")
    latencies.sort()
    p50 = statistics.median(latencies) if latencies else float("nan")
    p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
    throughput = len(latencies) / elapsed
    print(f"\n[load] {CONVERSATIONS}x{MESSAGES} = {total} messages in {elapsed:.1f}s: "
          f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, {throughput:.1f} msg/s, "
          f"errors {len(problems)}, 'database is locked' {locked}, store busy retries {busy}")
    assert not problems, problems[:10]
    assert locked == 0
    assert len(latencies) == total
    # In order: each conversation's stored user messages are exactly the script, in order.
    db = stack.settings.data_dir / "conversations.db"
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT sender_id, data FROM events WHERE type_name = 'user' AND sender_id LIKE "
            "'load-%' ORDER BY id").fetchall()
    stored: dict[str, list[str]] = {}
    for sender, data in rows:
        stored.setdefault(sender, []).append(json.loads(data)["text"])
    assert len(stored) == CONVERSATIONS
    for sender, messages in stored.items():
        index = int(re.match(r"load-(\d+)-", sender).group(1))
        assert messages == [SCRIPT[(t + index) % len(SCRIPT)][0] for t in range(MESSAGES)]
    record("load", "50 concurrent conversations x 20 messages",
           "aiohttp on loopback, 50 conversations at once (bounded connector), each message "
           "with a known answer (greet / bot_challenge / thank, as text and as payload), "
           "one Rasa process, SQLite store", total,
           f"ok: 0 errors, every reply matched its message, stored user messages in order for "
           f"all 50; 'database is locked' {locked}, store busy retries {busy}; "
           f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, {throughput:.1f} msg/s "
           f"({elapsed:.0f}s wall, shared 2-core machine)")
    from reliability_report import flush

    flush("load")
