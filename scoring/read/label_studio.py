"""Talking to a Label Studio server for `winnow send --url`, `winnow receive --url` and the
pages, through the official SDK (`label-studio-sdk`, optional: `pip install -r
requirements-label-studio.txt`). The files are `scoring.read.labelling`'s; this module only
creates a project, imports tasks and downloads the JSON export.

The URL and the API key come from `--url` / `--api-key`, else `LABEL_STUDIO_URL` /
`LABEL_STUDIO_API_KEY`. Label Studio takes a personal access token or a legacy token as the
key (Account & Settings in its UI); the SDK handles either.
"""

from __future__ import annotations

import os
from typing import Any

from scoring.errors import InputError

URL_ENV, KEY_ENV = "LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"
TITLE_CHARS = 50  # Label Studio's longest project title


def server_url(url: str | None) -> str:
    """The server's URL as given or from the environment, without a trailing slash."""
    return (url or os.environ.get(URL_ENV) or "").rstrip("/")


def configured() -> bool:
    """Whether the environment names a server and a key (the pages then send directly)."""
    return bool(os.environ.get(URL_ENV) and os.environ.get(KEY_ENV))


def connect(url: str | None, api_key: str | None) -> Any:
    """An SDK client for the server, checked by one request (who am I).

    Raises
    ------
    InputError
        No URL or key, the SDK not installed, the server unreachable, or the key refused.
    """
    url = server_url(url)
    api_key = api_key or os.environ.get(KEY_ENV)
    if not url or not api_key:
        raise InputError(
            f"Label Studio needs a URL and an API key: --url and --api-key, or {URL_ENV} and "
            f"{KEY_ENV} (the key is under Account & Settings in Label Studio)"
        )
    try:
        from label_studio_sdk import LabelStudio
    except ImportError:
        raise InputError(
            "talking to a Label Studio server needs its SDK: pip install -r "
            "requirements-label-studio.txt (or write files with --out and import them by hand)"
        ) from None
    client = LabelStudio(base_url=url, api_key=api_key)
    _call(url, lambda: client.users.whoami())
    return client


def _call(url: str, request: Any) -> Any:
    """One SDK request; a refused key or an unreachable server as one InputError line."""
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    try:
        return request()
    except httpx.HTTPError as err:
        raise InputError(
            f"cannot reach Label Studio at {url} ({type(err).__name__}: {err})"
        ) from None
    except ApiError as err:
        body = err.body if isinstance(err.body, dict) else {}
        detail = body.get("detail") or str(err.body)[:200]
        if err.status_code in (401, 403):
            raise InputError(f"Label Studio at {url} refused the API key ({detail})") from None
        raise InputError(f"Label Studio at {url} answered {err.status_code}: {detail}") from None


def create_project(
    client: Any, url: str, title: str, label_config: str, tasks: list[dict[str, Any]]
) -> int:
    """Create a project with `label_config`, import `tasks`; return the project's id."""
    project = _call(url, lambda: client.projects.create(title=title, label_config=label_config))
    _call(url, lambda: client.projects.import_tasks(project.id, request=tasks))
    return int(project.id)


def export_json(client: Any, url: str, project: int) -> str:
    """The project's JSON export (every task, answered or not), as Label Studio writes it."""
    chunks = _call(
        url,
        lambda: list(
            client.projects.exports.download_sync(
                project, export_type="JSON", download_all_tasks=True
            )
        ),
    )
    return b"".join(chunks).decode("utf-8")
