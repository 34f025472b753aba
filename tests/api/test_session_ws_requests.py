"""Client requests over the session WebSocket: client ids, acks, resends, closed sockets.

Through the real Serve ingress and session actor (its sandbox the synthetic OpenCode, see
tests/api/test_session_ws.py), as the browser client uses them.
"""

from __future__ import annotations

from tests.api.test_session_ws import Client, Live, live  # noqa: F401  (fixture)
from tests.fakes.opencode import Reply


def _status_replies(client: Client) -> int:
    return sum(1 for f in client.frames if f["type"] == "status" and f["seq"] == 0)


def _acks(client: Client) -> list[dict[str, object]]:
    return [f for f in client.frames if f["type"] == "client_ack"]


async def test_a_prompt_is_acked_and_a_resent_id_is_applied_once(live: Live) -> None:
    live.fake.reply = Reply(tokens=["once"])
    first = await live.connect()
    assert (await first.recv())["type"] == "init"
    await first.send(type="prompt", content="do it", client_id="p-1")
    await first.until(lambda f: f["type"] == "client_ack")
    ack = _acks(first)[0]
    assert ack["client_id"] == "p-1" and ack["seq"] == 0 and isinstance(ack["message_id"], str)
    await first.until_completes(1)
    # The client did not see the ack (say the socket dropped first) and resends on a new one.
    again = await live.connect()
    await again.recv()
    await again.send(type="prompt", content="do it", client_id="p-1")
    await again.until(lambda f: f["type"] == "client_ack")
    assert _acks(again)[0]["message_id"] == ack["message_id"]
    # A later prompt's answer proves the resend was handled before it: still one "do it".
    await again.send(type="prompt", content="next", client_id="p-2")
    await again.until(lambda f: f["type"] == "message_complete")
    assert [text for _, text in live.fake.prompts] == ["do it", "next"]
    users = [
        f["message"]["content"]
        for f in first.logged() + again.logged()
        if f["type"] == "message" and f["message"]["role"] == "user"
    ]
    assert users.count("do it") == 1


async def test_prompts_queued_when_the_socket_closes_are_still_delivered(live: Live) -> None:
    live.fake.reply = Reply(tokens=["slow ", "answer"], token_delay=0.2)
    client = await live.connect()
    await client.recv()
    for n in range(3):
        await client.send(type="prompt", content=f"queued {n}", client_id=f"q-{n}")
    await client.until(lambda f: f["type"] == "message")  # the first prompt was taken
    await client.ws.close()
    watcher = await live.connect()
    # The queued prompts reach the agent although their socket is gone.
    await watcher.until(lambda _: len(live.fake.prompts) == 3, within=60)
    assert [text for _, text in live.fake.prompts] == ["queued 0", "queued 1", "queued 2"]


async def test_a_resent_request_is_acked_as_a_duplicate(live: Live) -> None:
    client = await live.connect()
    await client.recv()
    await client.send(type="get_status", client_id="s-1")
    await client.until(lambda f: f["type"] == "client_ack")
    assert _acks(client)[0] == {
        "type": "client_ack",
        "seq": 0,
        "client_id": "s-1",
        "message_id": None,
        "duplicate": False,
    }
    answers = _status_replies(client)  # the session's own status events (seq > 0) aside
    assert answers == 1
    await client.send(type="get_status", client_id="s-1")
    await client.until(lambda f: f["type"] == "client_ack" and f["duplicate"] is True)
    assert _status_replies(client) == answers  # not applied again


async def test_a_nul_in_a_prompt_is_refused_naming_the_request(live: Live) -> None:
    client = await live.connect()
    await client.recv()
    await client.send(type="prompt", content="bad \u0000 text", client_id="n-1")
    await client.until(lambda f: f["type"] == "error")
    error = next(f for f in client.frames if f["type"] == "error")
    assert error["code"] == "invalid_message" and error["client_id"] == "n-1"
    assert "content" in error["message"]
    # The socket still works, and nothing reached the agent.
    await client.send(type="ping")
    await client.until(lambda f: f["type"] == "pong")
    assert live.fake.prompts == []
