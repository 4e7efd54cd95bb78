"""Winnow's server entry: `streamlit run serve.py` serves the app in `app.py` (the router).

Why a second file: opened directly at a page's URL (a bookmark, a refresh of
`/scores`), Streamlit's frontend does not know where the server's root is, so it probes the
page's path first (`/scores/_stcore/health`, `/scores/_stcore/host-config`: two 404s in the
console on every load, streamlit/streamlit#7074) before falling back to `/`. The frontend
reads the root from `window.__streamlit.BACKEND_BASE_URL` when a page sets it; this entry
serves the same app through `st.App` with one middleware that sets it in every HTML page,
so nothing is probed. The root honours `server.baseUrlPath` (an app behind a proxy).
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import streamlit as st
from starlette.middleware import Middleware


def base_url_script(base_url_path: str) -> bytes:
    """The `<script>` that tells Streamlit's frontend where the server's root is.

    Parameters
    ----------
    base_url_path : str
        `server.baseUrlPath` ("" when served at the root).
    """
    path = "/" + base_url_path.strip("/")
    path = path if path == "/" else path + "/"
    return (
        "<script>window.__streamlit=Object.assign(window.__streamlit||{},"
        f'{{BACKEND_BASE_URL:window.location.origin+"{path}"}});</script>'
    ).encode()


class BaseUrlMiddleware:
    """Insert `base_url_script` at the top of `<head>` in the HTML Streamlit serves."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        body: list[bytes] = []

        async def patched(message: dict) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                if headers.get(b"content-type", b"").startswith(b"text/html"):
                    start = message  # hold it: the length changes with the script
                    return
                await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body"):
                return
            html = b"".join(body)
            # Streamlit's own gzip middleware runs inside this one: undo it for this small
            # page (about 8 KB) rather than patch compressed bytes.
            if dict(start["headers"]).get(b"content-encoding") == b"gzip":
                html = gzip.decompress(html)
            html = html.replace(
                b"<head>", b"<head>" + base_url_script(st.get_option("server.baseUrlPath")), 1
            )
            dropped = (b"content-length", b"content-encoding")
            headers = [(k, v) for k, v in start["headers"] if k.lower() not in dropped]
            headers.append((b"content-length", str(len(html)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": html})

        await self.app(scope, receive, patched)


# Beside this file, so `streamlit run /elsewhere/serve.py` finds it from any folder.
app = st.App(Path(__file__).with_name("app.py"), middleware=[Middleware(BaseUrlMiddleware)])
