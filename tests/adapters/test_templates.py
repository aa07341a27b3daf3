"""WhatsApp templates in the adapter: a template's shape (its variables per component), the
values checked against it, the `components` and text built from them, the send request,
the list call and its pages, and the template errors in words. Pure, plus one real send
to the strict fake platform (tests/faketemplates.py) per request shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adapters.meta import send as send_meta
from adapters.meta import send_template, templates
from adapters.meta.send_template import TemplateMismatch, Values
from adapters.outbound import Outcome, Outgoing, OutgoingFile, Platforms
from adapters.sending import send
from schemas.message import ChannelKind
from tests import faketemplates
from tests.fakeplatform import WHATSAPP, FakePlatform, running_fake

pytestmark = pytest.mark.unit

PLATFORMS = Platforms(graph="https://graph.example/v23.0")
ORDER = templates.shape(
    faketemplates.ORDER_UPDATE["components"], faketemplates.ORDER_UPDATE["parameter_format"]
)
NAMED = templates.shape(faketemplates.APPOINTMENT["components"], "NAMED")
LINK = "https://cdn.example/box.jpg"


def test_a_shape_names_each_components_variables_and_the_header_format() -> None:
    assert ORDER.header_format == "IMAGE" and ORDER.header_media == "image"
    assert ORDER.body_variables == ["1", "2"]
    assert ORDER.footer_text == "Reply STOP to opt out"
    assert [(b.index, b.type, b.variables) for b in ORDER.buttons] == [
        (0, "URL", ["1"]),
        (1, "QUICK_REPLY", []),
    ]
    assert NAMED.named and NAMED.body_variables == ["first_name", "time"]
    assert templates.variables("{{2}} then {{1}} and {{ 1 }}") == ["1", "2"]


def test_values_build_the_documented_components_and_the_text_the_customer_reads() -> None:
    values = Values(body=["Ada", "A-1001"], buttons={0: "A-1001"}, header_media_link=LINK)
    send_template.check(ORDER, values)
    assert send_template.components(ORDER, values) == [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": LINK}}]},
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "A-1001"}],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": "A-1001"}],
        },
    ]
    assert send_template.render(ORDER, values) == (
        "Hi Ada, your order A-1001 is on its way.\n\nReply STOP to opt out"
    )


def test_named_templates_name_each_parameter_and_copy_codes_are_coupon_codes() -> None:
    values = Values(body=["Ada", "10:30"], buttons={0: "SAVE10"})
    send_template.check(NAMED, values)
    body, button = send_template.components(NAMED, values)
    assert body["parameters"][0] == {"type": "text", "parameter_name": "first_name", "text": "Ada"}
    assert button == {
        "type": "button",
        "sub_type": "copy_code",
        "index": "0",
        "parameters": [{"type": "coupon_code", "coupon_code": "SAVE10"}],
    }
    assert send_template.render(NAMED, values) == "Hi Ada, see you at 10:30."


@pytest.mark.parametrize(
    ("values", "words"),
    [
        (Values(body=["Ada"], buttons={0: "x"}, header_media_link=LINK), "body has 2 variables"),
        (Values(body=["Ada", "1"], header_media_link=LINK), "needs a value"),
        (Values(body=["Ada", "1"], buttons={0: "x"}), "header is an image"),
        (Values(body=["Ada", " "], buttons={0: "x"}, header_media_link=LINK), "is empty"),
        (
            Values(body=["a", "b"], buttons={0: "x"}, header_media_link="http://x.example/a"),
            "https://",
        ),
    ],
)
def test_values_that_do_not_fit_are_refused_in_words(values: Values, words: str) -> None:
    with pytest.raises(TemplateMismatch, match=words):
        send_template.check(ORDER, values)


def test_the_send_request_is_type_template_with_the_uploaded_header_named_by_its_id() -> None:
    parts = send_template.components(ORDER, Values(body=["a", "b"], header_media_file=True))
    template = send_template.template_object("order_update", "en_US", parts)
    assert template["components"][0]["parameters"][0] == {"type": "image", "image": {}}
    out = Outgoing(
        ChannelKind.WHATSAPP,
        "106540352242922",
        "905551112233",
        "",
        secrets={"access_token": "t"},
        template=template,
        file=OutgoingFile("image/jpeg", "box.jpg", b"x", media_id="777"),
    )
    request = send_meta.build(out, PLATFORMS)
    assert request.url == "https://graph.example/v23.0/106540352242922/messages"
    assert request.json is not None and request.json["type"] == "template"
    assert request.json["template"]["components"][0]["parameters"][0]["image"] == {"id": "777"}
    assert template["components"][0]["parameters"][0]["image"] == {}  # not changed in place


def test_the_list_call_carries_the_token_in_the_header_and_pages_by_cursor() -> None:
    request = templates.list_request(PLATFORMS, "102290129340398", "secret", after="QVFI")
    assert request.url.startswith("https://graph.example/v23.0/102290129340398/message_templates?")
    assert "secret" not in request.url and "after=QVFI" in request.url
    assert request.headers == {"Authorization": "Bearer secret"}
    body = {"data": [{"name": "a", "language": "en"}, {"id": "1"}], "paging": {"cursors": {}}}
    page = templates.read_page(200, body | {"paging": {"cursors": {"after": "X"}, "next": "u"}})
    assert isinstance(page, templates.Page) and page.after == "X"
    assert [t["name"] for t in page.templates] == ["a"]  # one without a name is no template
    last = templates.read_page(200, body | {"paging": {"cursors": {"after": "Y"}}})
    assert isinstance(last, templates.Page) and last.after is None
    error = {"error": {"message": "(#100) Invalid parameter", "code": 100}}
    assert templates.read_page(400, error) == "(#100) Invalid parameter"


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (132000, "number of values does not match"),
        (132001, "no template of this name"),
        (132015, "paused"),
        (132016, "disabled"),
    ],
)
def test_template_errors_reach_the_agent_in_words(code: int, words: str) -> None:
    body = {"error": {"message": f"(#{code}) terse", "code": code}}
    outcome = send_meta.interpret(400, body, {})
    assert outcome.kind == "failed" and outcome.code == str(code)
    assert words in outcome.reason


def test_131047_keeps_metas_details_and_has_words_without_them() -> None:
    details = {"error_data": {"details": "Message failed to send because more than 24 hours"}}
    with_details = {"error": {"message": "(#131047) Re-engagement message", "code": 131047}}
    with_details["error"] |= details
    assert send_meta.interpret(400, with_details, {}).reason.startswith("Message failed")
    bare = {"error": {"code": 131047}}
    assert "24 hours" in send_meta.interpret(400, bare, {}).reason


def test_a_pause_or_rejection_keeps_its_reason() -> None:
    entry = {
        "id": "1",
        "changes": [
            {
                "field": templates.STATUS_FIELD,
                "value": {
                    "event": "PAUSED",
                    "message_template_id": 5,
                    "reason": "NONE",
                    "other_info": {"title": "FIRST_PAUSE", "description": "Paused for 3 hours"},
                },
            },
            {"field": "messages", "value": {}},
        ],
    }
    [update] = templates.parse_status(entry)
    assert update.status == "PAUSED" and update.reason == "FIRST_PAUSE: Paused for 3 hours"
    assert templates.parse_status({"id": "1", "changes": [{"field": "x"}]}) == []
    assert templates.parse_status("junk") == []


# Against the strict fake


@pytest.fixture(scope="module")
def server() -> Iterator[FakePlatform]:
    with running_fake() as fake:
        yield fake


@pytest.fixture
def fake(server: FakePlatform) -> Iterator[FakePlatform]:
    server.reset()
    faketemplates.of(server).sent.clear()
    yield server


def _template_out(template: dict[str, Any]) -> Outgoing:
    return Outgoing(
        ChannelKind.WHATSAPP,
        WHATSAPP.account_id,
        "905551112233",
        "",
        secrets={"access_token": WHATSAPP.token},
        template=template,
    )


async def test_the_fake_accepts_the_built_send_and_answers_template_errors(
    fake: FakePlatform,
) -> None:
    values = Values(body=["Ada", "A-1001"], buttons={0: "A-1001"}, header_media_link=LINK)
    parts = send_template.components(ORDER, values)
    async with httpx.AsyncClient() as client:
        sent = await send(
            client,
            _template_out(send_template.template_object("order_update", "en_US", parts)),
            fake.base_urls(),
        )
        assert sent.kind == "sent" and sent.platform_message_id
        assert fake.rejected == []
        assert faketemplates.of(fake).sent[0]["name"] == "order_update"
        short = send_template.template_object("order_update", "en_US", parts[1:])
        wrong = await send(client, _template_out(short), fake.base_urls())
        paused = await send(
            client,
            _template_out(send_template.template_object("spring_sale", "en", [])),
            fake.base_urls(),
        )
    assert (wrong.kind, wrong.code) == ("failed", "132000")
    assert (paused.kind, paused.code) == ("failed", "132015")
    assert "paused" in paused.reason
    assert isinstance(sent, Outcome)
