"""Serve one of the assistant's Rasa channels on a local port and send it requests (run in Rasa's env).

Used by fast tests (tests/test_boundaries.py) that need the real channel code, which imports Rasa, but
no Rasa server, model or action server: the channel's blueprint is mounted on a bare Sanic app, and
``on_new_message`` only records what would have reached Rasa (and, optionally, replies or fails the
way Rasa's processor can). Usage:

    .venv-rasa/bin/python tests/channel_probe.py < cases.json   →   one JSON line on stdout

cases.json: {"channel": "slack" | "teams" | "rest" | "webchat", "credentials": {...},
             "on_message": "record" | "silent" | "fail" | "answer" | "slow" (answers after slow_seconds),
             "concurrent": true (send the requests at once, 50 ms apart),
             "requests": [{"path", "body" (str) | "json", "headers"}],     (HTTP channels)
             "say": ["text", …]}                                           (webchat: over socket.io)
             "clients": [{"headers": {…}, "say": […], "lang"?, "reuse"?}, …]}
                                  (a "say" item may be the whole event: {"message", "customData"})
                                  (webchat: several sockets in turn; "reuse": the latest session token)
Output: {"responses": [{"status", "headers", "body"}], "messages": [{"text", "sender_id", "metadata"}],
         "replies": [[bot_uttered events after each "say"], …],
         "clients": [{"confirmed": bool, "before": [events before the session], "replies": […]}, …]}
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
logging.basicConfig(level=logging.WARNING)
logging.getLogger("sanic.root").setLevel(logging.WARNING)


def channel_for(name: str, credentials: dict):
    if name == "slack":
        from bot.connectors.slack import CitingSlackInput

        return CitingSlackInput.from_credentials(credentials)
    if name == "teams":
        from bot.connectors.teams import TeamsInput

        return TeamsInput.from_credentials(credentials)
    if name == "rest":
        from bot.connectors.rest import GuardedRestInput

        return GuardedRestInput.from_credentials(credentials)
    if name == "webchat":
        from bot.connectors.webchat import WebChatInput

        return WebChatInput.from_credentials(credentials)
    raise SystemExit(f"unknown channel {name}")


async def main(cases: dict) -> dict:
    import aiohttp
    from sanic import Sanic

    channel = channel_for(cases["channel"], cases.get("credentials") or {})
    messages, replies = [], []
    mode = cases.get("on_message", "record")

    async def on_new_message(message) -> None:
        messages.append({"text": message.text, "sender_id": message.sender_id, "metadata": message.metadata})
        if mode == "fail":
            raise RuntimeError("the processor failed")
        if mode == "slow":  # a message that takes a while, as under load
            await asyncio.sleep(float(cases.get("slow_seconds", 1.0)))
        if mode in ("answer", "slow"):
            await message.output_channel.send_text_message(message.sender_id, "svar")
        # "silent": nothing sent, as when the action server is down

    app = Sanic(f"probe_{os.getpid()}")
    app.config.KEEP_ALIVE = False
    app.blueprint(channel.blueprint(on_new_message), url_prefix=f"/webhooks/{channel.name()}")
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # Sanic reads port 0 as "the default port": hand it a bound socket instead
    port = sock.getsockname()[1]
    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    await server.startup()
    responses, clients = [], []
    try:
        if cases["channel"] == "webchat" and "clients" not in cases:
            replies.extend(await webchat(port, cases.get("say") or []))
        for client in cases.get("clients") or []:
            token = next((c["token"] for c in reversed(clients) if c["token"]), None) if client.get("reuse") else None
            clients.append(await webchat_client(port, client.get("say") or [], client.get("headers") or {},
                                                client.get("lang"), token))
        async with aiohttp.ClientSession() as session:
            async def send(req: dict) -> dict:
                url = f"http://127.0.0.1:{port}{req['path']}"
                kwargs = {"headers": req.get("headers") or {}}
                if "json" in req:
                    kwargs["json"] = req["json"]
                else:
                    kwargs["data"] = (req.get("body") or "").encode("utf-8")
                started = time.perf_counter()
                async with session.post(url, **kwargs) as resp:
                    return {"status": resp.status, "headers": {k.lower(): v for k, v in resp.headers.items()},
                            "body": await resp.text(), "seconds": round(time.perf_counter() - started, 3)}

            if cases.get("concurrent"):  # all at once, in order of sending (the gate sees them in that order)
                tasks = []
                for req in cases.get("requests") or []:
                    tasks.append(asyncio.ensure_future(send(req)))
                    await asyncio.sleep(0.05)
                responses.extend(await asyncio.gather(*tasks))
            else:
                for req in cases.get("requests") or []:
                    responses.append(await send(req))
        # Slack handles a message in a background task after answering the request: let it finish
        for _ in range(100):
            if not getattr(channel, "_background_tasks", None):
                break
            await asyncio.sleep(0.05)
    finally:
        server.close()
        await server.wait_closed()
    return {"responses": responses, "messages": messages, "replies": replies, "clients": clients}


async def webchat(port: int, say: list) -> list:
    """Open a web chat session over socket.io and send each text; the bot_uttered events after each."""
    import socketio

    client = socketio.AsyncClient()
    events: asyncio.Queue = asyncio.Queue()
    confirmed = asyncio.Event()
    client.on("bot_uttered", lambda data: events.put_nowait(data))
    client.on("session_confirm", lambda data: confirmed.set())
    await client.connect(f"http://127.0.0.1:{port}", socketio_path="/socket.io", transports=["polling"])
    out = []
    try:
        await client.emit("session_request", {})
        await asyncio.wait_for(confirmed.wait(), 10)
        for text in say:  # a text, or the whole event ({"message", "customData"})
            await client.emit("user_uttered", text if isinstance(text, dict) else {"message": text})
            got = [await asyncio.wait_for(events.get(), 10)]
            await asyncio.sleep(0.2)  # anything more for the same message
            while not events.empty():
                got.append(events.get_nowait())
            out.append(got)
    finally:
        try:  # a polling client's disconnect waits for its long poll to end: do not wait long
            await asyncio.wait_for(client.disconnect(), 1)
        except (asyncio.TimeoutError, Exception):
            pass
    return out


async def webchat_listen(port: int, seconds: float = 30, say: str | None = None) -> None:
    """Open a web chat session on the Rasa at ``port`` (and send ``say``, which starts the conversation);
    print {"session_id"} at once, then each bot_uttered event that arrives within ``seconds`` (one JSON
    line each; stdout is flushed)."""
    import socketio

    client = socketio.AsyncClient()
    confirmed: asyncio.Queue = asyncio.Queue()
    client.on("session_confirm", lambda data: confirmed.put_nowait(data))
    client.on("bot_uttered", lambda data: print(json.dumps({"bot_uttered": data}, ensure_ascii=False), flush=True))
    await client.connect(f"http://127.0.0.1:{port}", socketio_path="/socket.io", transports=["polling"])
    try:
        await client.emit("session_request", {})
        session = await asyncio.wait_for(confirmed.get(), 10)
        print(json.dumps({"session_id": session["session_id"]}), flush=True)
        if say:
            await client.emit("user_uttered", {"message": say})
        await asyncio.sleep(seconds)
    finally:
        try:
            await asyncio.wait_for(client.disconnect(), 1)
        except (asyncio.TimeoutError, Exception):
            pass


async def webchat_client(port: int, say: list, headers: dict, lang, token=None) -> dict:
    """One socket (with ``headers`` on its HTTP requests, e.g. X-Forwarded-For) asks for a session; when
    it gets one it sends each text. A refused session gets a bot_uttered event instead of a confirmation."""
    import socketio

    client = socketio.AsyncClient()
    events: asyncio.Queue = asyncio.Queue()
    confirmed = asyncio.Event()
    client.on("bot_uttered", lambda data: events.put_nowait(data))
    out = {"confirmed": False, "before": [], "replies": [], "token": None}

    def on_confirm(data):
        out["token"] = data.get("token")
        confirmed.set()

    client.on("session_confirm", on_confirm)
    await client.connect(f"http://127.0.0.1:{port}", socketio_path="/socket.io", transports=["polling"],
                         headers=headers)
    try:
        await client.emit("session_request", {k: v for k, v in (("lang", lang), ("token", token)) if v})
        waiter = asyncio.ensure_future(confirmed.wait())
        refused = asyncio.ensure_future(events.get())
        done, _ = await asyncio.wait({waiter, refused}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if refused in done:
            out["before"].append(refused.result())
        else:
            refused.cancel()
        waiter.cancel()
        out["confirmed"] = confirmed.is_set()
        if out["confirmed"]:
            for text in say:  # a text, or the whole event ({"message", "customData"})
                await client.emit("user_uttered", text if isinstance(text, dict) else {"message": text})
                got = [await asyncio.wait_for(events.get(), 10)]
                await asyncio.sleep(0.05)
                while not events.empty():
                    got.append(events.get_nowait())
                out["replies"].append(got)
    finally:
        try:
            await asyncio.wait_for(client.disconnect(), 1)
        except (asyncio.TimeoutError, Exception):
            pass
    return out


if __name__ == "__main__":
    result = asyncio.run(main(json.load(sys.stdin)))
    print(json.dumps(result, ensure_ascii=False))
