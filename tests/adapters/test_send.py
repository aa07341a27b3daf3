"""Outbound sends over real HTTP against the strict fake platform (tests/fakeplatform.py):
the exact request each platform receives, the ids read back from its answer, and every
error class mapped to the right Outcome. Plus the pure edges: limits and redaction."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from adapters.meta import send as send_meta
from adapters.outbound import Outcome, Outgoing, Platforms, TooLong, base_urls
from adapters.sending import send
from adapters.telegram import send as send_telegram
from schemas.message import ChannelKind
from tests.fakeplatform import (
    INSTAGRAM,
    MESSENGER,
    TELEGRAM,
    WHATSAPP,
    Account,
    FakePlatform,
    running_fake,
)
from tests.servers import free_port

IGSID, PSID, WA_ID, CHAT = "1234567890123456", "24680135792468013", "16505076520", 5120001
FORUM = -1001234567890
IG_COMMENT, FB_COMMENT = "17873440459141021", "102030405060708_987654321"
TEXT = "Hello from the hub ✨"


def outgoing(account: Account, recipient: str, text: str = TEXT, **kw: Any) -> Outgoing:
    name = "bot_token" if account.kind == ChannelKind.TELEGRAM else "access_token"
    return Outgoing(
        account.kind, account.account_id, recipient, text, secrets={name: account.token}, **kw
    )


def graph_error(code: int, message: str, subcode: int | None = None, **extra: Any) -> Any:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbC"}
    return {"error": error | ({"error_subcode": subcode} if subcode else {}) | extra}


@pytest.fixture(scope="module")
def server() -> Iterator[FakePlatform]:
    with running_fake() as fake:
        yield fake


@pytest.fixture
def fake(server: FakePlatform) -> Iterator[FakePlatform]:
    server.reset()
    yield server
    assert server.rejected == [], "the fake rejected a request's shape"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


async def sent_one(client: httpx.AsyncClient, fake: FakePlatform, out: Outgoing) -> Any:
    """Send, expect success, and return what the fake received (exactly one request)."""
    outcome = await send(client, out, fake.base_urls())
    assert outcome.kind == "sent", outcome
    [received] = fake.requests
    assert received.method == "POST"
    assert received.headers["content-type"] == "application/json"
    assert received.query == ""  # no token or text in the URL
    return outcome, received


# Successful sends: the exact request, the id from the answer


async def test_instagram_dm(fake: FakePlatform, client: httpx.AsyncClient) -> None:
    outcome, got = await sent_one(client, fake, outgoing(INSTAGRAM, IGSID))
    assert got.path == f"/instagram/v23.0/{INSTAGRAM.account_id}/messages"
    assert got.headers["authorization"] == f"Bearer {INSTAGRAM.token}"
    assert got.body == {"recipient": {"id": IGSID}, "message": {"text": TEXT}}
    assert outcome.platform_message_id == got.answer["message_id"]


async def test_messenger_dm(fake: FakePlatform, client: httpx.AsyncClient) -> None:
    outcome, got = await sent_one(client, fake, outgoing(MESSENGER, PSID))
    assert got.path == f"/graph/v23.0/{MESSENGER.account_id}/messages"
    assert got.headers["authorization"] == f"Bearer {MESSENGER.token}"
    assert got.body == {
        "recipient": {"id": PSID},
        "message": {"text": TEXT},
        "messaging_type": "RESPONSE",
    }
    assert outcome == Outcome.sent(got.answer["message_id"])


async def test_whatsapp_text(fake: FakePlatform, client: httpx.AsyncClient) -> None:
    outcome, got = await sent_one(client, fake, outgoing(WHATSAPP, WA_ID))
    assert got.path == f"/graph/v23.0/{WHATSAPP.account_id}/messages"
    assert got.headers["authorization"] == f"Bearer {WHATSAPP.token}"
    assert got.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": WA_ID,
        "type": "text",
        "text": {"body": TEXT, "preview_url": False},
    }
    assert outcome.platform_message_id == got.answer["messages"][0]["id"]
    assert outcome.platform_message_id.startswith("wamid.")


async def test_whatsapp_reply_carries_context(
    fake: FakePlatform, client: httpx.AsyncClient
) -> None:
    _, got = await sent_one(client, fake, outgoing(WHATSAPP, WA_ID, reply_to="wamid.ORIGINAL"))
    assert got.body["context"] == {"message_id": "wamid.ORIGINAL"}


async def test_telegram_message(fake: FakePlatform, client: httpx.AsyncClient) -> None:
    outcome, got = await sent_one(client, fake, outgoing(TELEGRAM, str(CHAT)))
    assert got.path == f"/telegram/bot{TELEGRAM.token}/sendMessage"
    assert got.body == {"chat_id": CHAT, "text": TEXT}
    assert outcome.platform_message_id == f"{CHAT}:{got.answer['result']['message_id']}"


async def test_telegram_reply_in_a_forum_topic(
    fake: FakePlatform, client: httpx.AsyncClient
) -> None:
    out = outgoing(TELEGRAM, f"{FORUM}:42", reply_to=f"{FORUM}:77")
    outcome, got = await sent_one(client, fake, out)
    assert got.body == {
        "chat_id": FORUM,
        "text": TEXT,
        "message_thread_id": 42,
        "reply_parameters": {"message_id": 77, "allow_sending_without_reply": True},
    }
    assert outcome.platform_message_id == f"{FORUM}:{got.answer['result']['message_id']}"


async def test_instagram_private_comment_reply(
    fake: FakePlatform, client: httpx.AsyncClient
) -> None:
    out = outgoing(INSTAGRAM, IGSID, comment_id=IG_COMMENT)
    outcome, got = await sent_one(client, fake, out)
    assert got.path == f"/instagram/v23.0/{INSTAGRAM.account_id}/messages"
    assert got.body == {"recipient": {"comment_id": IG_COMMENT}, "message": {"text": TEXT}}
    assert outcome.platform_message_id == got.answer["message_id"]


async def test_instagram_public_comment_reply(
    fake: FakePlatform, client: httpx.AsyncClient
) -> None:
    out = outgoing(INSTAGRAM, IGSID, comment_id=IG_COMMENT, public=True)
    outcome, got = await sent_one(client, fake, out)
    assert got.path == f"/instagram/v23.0/{IG_COMMENT}/replies"
    assert got.headers["authorization"] == f"Bearer {INSTAGRAM.token}"
    assert got.body == {"message": TEXT}
    assert outcome.platform_message_id == got.answer["id"]


async def test_facebook_public_comment_reply(fake: FakePlatform, client: httpx.AsyncClient) -> None:
    out = outgoing(MESSENGER, PSID, comment_id=FB_COMMENT, public=True)
    outcome, got = await sent_one(client, fake, out)
    assert got.path == f"/graph/v23.0/{FB_COMMENT}/comments"
    assert got.headers["authorization"] == f"Bearer {MESSENGER.token}"
    assert got.body == {"message": TEXT}
    assert outcome.platform_message_id == got.answer["id"]


async def test_facebook_private_comment_reply(
    fake: FakePlatform, client: httpx.AsyncClient
) -> None:
    _, got = await sent_one(client, fake, outgoing(MESSENGER, PSID, comment_id=FB_COMMENT))
    assert got.body["recipient"] == {"comment_id": FB_COMMENT}
    assert got.body["messaging_type"] == "RESPONSE"


# Errors: each recorded answer mapped to its Outcome

RATE = "(#4) Application request limit reached"
EXPIRED = "Error validating access token: Session has expired on Tuesday."
REENGAGE = "Message failed to send because more than 24 hours have passed since the customer"
WINDOW = "(#10) This message is sent outside of allowed window."
FLOOD, BLOCKED = "Too Many Requests: retry after 12", "Forbidden: bot was blocked by the user"
WA_131047 = graph_error(131047, "(#131047) Re-engagement message", error_data={"details": REENGAGE})


def tg_error(code: int, description: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "error_code": code, "description": description} | extra


# name: (account, recorded status, body, headers, expected outcome)
# fmt: off
ERRORS: dict[str, tuple[Account, int, Any, dict[str, str] | None, Outcome]] = {
    "5xx": (MESSENGER, 503, None, None, Outcome.retry("HTTP 503", "http_503")),
    "graph 5xx": (WHATSAPP, 500, graph_error(2, "Down"), None, Outcome.retry("Down", "2")),
    "429 Retry-After": (MESSENGER, 429, graph_error(4, RATE), {"Retry-After": "7"},
                        Outcome.retry(RATE, "4", 7.0)),
    "130429": (WHATSAPP, 400, graph_error(130429, "Rate"), None, Outcome.retry("Rate", "130429")),
    "tg 429": (TELEGRAM, 429, tg_error(429, FLOOD, parameters={"retry_after": 12}), None,
               Outcome.retry(FLOOD, "429", 12.0)),
    "tg 502": (TELEGRAM, 502, None, None, Outcome.retry("HTTP 502", "502")),
    "190": (INSTAGRAM, 400, graph_error(190, EXPIRED, 463), None,
            Outcome.needs_reconnect(EXPIRED, "190/463")),
    "tg 401": (TELEGRAM, 401, tg_error(401, "Unauthorized"), None,
               Outcome.needs_reconnect("Unauthorized", "401")),
    "131047": (WHATSAPP, 400, WA_131047, None, Outcome.failed(REENGAGE, "131047")),
    "window": (MESSENGER, 400, graph_error(10, WINDOW, 2018278), None,
               Outcome.failed(WINDOW, "10/2018278")),
    "tg 403": (TELEGRAM, 403, tg_error(403, BLOCKED), None, Outcome.failed(BLOCKED, "403")),
}
# fmt: on


@pytest.mark.parametrize(
    ("account", "status", "body", "headers", "expected"), ERRORS.values(), ids=ERRORS.keys()
)
async def test_error_answers_map_to_outcomes(
    fake: FakePlatform,
    client: httpx.AsyncClient,
    account: Account,
    status: int,
    body: Any,
    headers: dict[str, str] | None,
    expected: Outcome,
) -> None:
    recipient = str(CHAT) if account is TELEGRAM else WA_ID
    fake.fail_next("/", status, body, headers)
    outcome = await send(client, outgoing(account, recipient), fake.base_urls())
    assert outcome == expected
    assert len(fake.requests) == 1  # the request itself was well formed


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80007, 130429, 131056, 1, 2, 131016])
def test_graph_throttling_and_transient_codes_retry(code: int) -> None:
    outcome = send_meta.interpret(400, graph_error(code, "slow down"), {"retry-after": "3"})
    assert (outcome.kind, outcome.after_s, outcome.code) == ("retry", 3.0, str(code))


@pytest.mark.parametrize("subcode", [458, 460, 463, 467])
def test_token_subcodes_need_reconnect(subcode: int) -> None:
    outcome = send_meta.interpret(400, graph_error(102, "Session invalid", subcode), {})
    assert outcome.kind == "needs_reconnect"


def test_pure_edges_of_interpret() -> None:
    assert send_meta.interpret(200, {"recipient_id": "1"}, {}).code == "bad_response"
    assert send_meta.interpret(503, None, {"Retry-After": "soon"}).after_s is None
    invalid = graph_error(100, "Invalid parameter", error_user_msg="The text is not valid.")
    assert send_meta.interpret(400, invalid, {}) == Outcome.failed("The text is not valid.", "100")
    assert send_telegram.interpret(200, {"ok": True, "result": {}}, {}).code == "bad_response"
    assert send_telegram.interpret(429, None, {"Retry-After": "5"}).after_s == 5.0


async def test_network_error_is_retried(client: httpx.AsyncClient) -> None:
    closed = base_urls(f"http://127.0.0.1:{free_port()}")
    for out in (outgoing(WHATSAPP, WA_ID), outgoing(TELEGRAM, str(CHAT))):
        outcome = await send(client, out, closed)
        assert (outcome.kind, outcome.code, outcome.after_s) == ("retry", "network", None)
        assert TELEGRAM.token not in outcome.reason


async def test_a_timeout_is_an_unknown_outcome_never_retried(
    fake: FakePlatform, client: httpx.AsyncClient
) -> None:
    """The request left and no answer came in time: the platform may have the message, so
    sending it again could deliver it twice."""
    fake.slow_next(0.6)
    outcome = await send(client, outgoing(MESSENGER, PSID), fake.base_urls(), timeout_s=0.1)
    assert (outcome.kind, outcome.code) == ("failed", "unknown_outcome")


# Limits, secrets and shapes refused before any request

LIMITS = [(INSTAGRAM, 1000), (MESSENGER, 2000), (WHATSAPP, 4096), (TELEGRAM, 4096)]


@pytest.mark.parametrize(("account", "limit"), LIMITS)
async def test_too_long_fails_before_any_request(
    fake: FakePlatform, client: httpx.AsyncClient, account: Account, limit: int
) -> None:
    platform = send_telegram if account is TELEGRAM else send_meta
    recipient = str(CHAT) if account is TELEGRAM else WA_ID
    platform.build(outgoing(account, recipient, "é" * limit), fake.base_urls())  # at the limit
    with pytest.raises(TooLong) as raised:
        platform.build(outgoing(account, recipient, "é" * (limit + 1)), fake.base_urls())
    assert (raised.value.limit, raised.value.length) == (limit, limit + 1)
    outcome = await send(client, outgoing(account, recipient, "x" * (limit + 1)), Platforms())
    assert (outcome.kind, outcome.code) == ("failed", "too_long")
    assert fake.requests == []


async def test_unsendable_never_reaches_the_network(client: httpx.AsyncClient) -> None:
    nowhere = base_urls(f"http://127.0.0.1:{free_port()}")
    no_token = Outgoing(ChannelKind.MESSENGER, MESSENGER.account_id, PSID, TEXT)
    assert (await send(client, no_token, nowhere)).kind == "needs_reconnect"
    comment = outgoing(WHATSAPP, WA_ID, comment_id="123", public=True)
    assert (await send(client, comment, nowhere)).code == "unsupported"


async def test_the_fake_refuses_a_wrong_shape(
    server: FakePlatform, client: httpx.AsyncClient
) -> None:
    server.reset()
    url = f"{server.base_urls().graph}/{WHATSAPP.account_id}/messages"
    body = {"messaging_product": "sms", "recipient_type": "individual", "to": WA_ID}
    auth = {"Authorization": f"Bearer {WHATSAPP.token}"}
    answer = await client.post(
        url, json=body | {"type": "text", "text": {"body": "x"}}, headers=auth
    )
    assert answer.status_code == 400 and "messaging_product" in answer.json()["error"]["message"]
    wrong_token = await client.post(url, json=body, headers={"Authorization": "Bearer nope"})
    assert wrong_token.json()["error"]["code"] == 190
    assert len(server.rejected) == 2 and server.requests == []


# Tokens never in what gets logged


def test_tokens_are_redacted_from_urls_and_reprs() -> None:
    telegram = send_telegram.build(outgoing(TELEGRAM, str(CHAT)), Platforms())
    meta = send_meta.build(outgoing(MESSENGER, PSID), Platforms())
    assert TELEGRAM.token in telegram.url  # the Bot API's documented form
    assert telegram.redacted_url == "https://api.telegram.org/bot<redacted>/sendMessage"
    assert TELEGRAM.token not in repr(telegram) and "<redacted>" in repr(telegram)
    assert MESSENGER.token not in meta.redacted_url + repr(meta)
    assert MESSENGER.token not in repr(outgoing(MESSENGER, PSID))


async def test_httpx_request_log_has_no_bot_token(
    fake: FakePlatform, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        await send(client, outgoing(TELEGRAM, str(CHAT)), fake.base_urls())
    assert "/bot<redacted>/sendMessage" in caplog.text
    assert TELEGRAM.token not in caplog.text
