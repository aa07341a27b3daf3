"""The fake Telegram Bot API's methods beyond sending (mounted by tests/fakeplatform.py):
`answerCallbackQuery`, which the hub makes in its answer to a callback query's webhook (the
Bot API's "making requests when getting updates"); a test plays Telegram and passes that
answer on here, as Telegram would call the method with it."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from tests import fakeplatform as fp

# https://core.telegram.org/bots/api#answercallbackquery
ANSWER_CALLBACK_QUERY = {"callback_query_id", "text", "show_alert", "url", "cache_time"}


def answer_callback_query(fake: fp.FakePlatform, request: Request, body: Any) -> dict[str, Any]:
    fake._bot(request)
    if not isinstance(body, dict):
        raise fp.Reject("fake: the parameters are a JSON object")
    body = {k: v for k, v in body.items() if k != "method"}  # a webhook answer names it
    fp._keys(body, required={"callback_query_id"}, allowed=ANSWER_CALLBACK_QUERY)
    if not fp._str(body["callback_query_id"]):
        raise fp.Reject("fake: callback_query_id is a string")
    if "text" in body and not (fp._str(body["text"]) and len(body["text"]) <= 200):
        raise fp.Reject("fake: text is 0-200 characters")
    return {"ok": True, "result": True}
