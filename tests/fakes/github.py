"""Fake GitHub REST API: repositories and pull requests, with GitHub's real wire format.

Implements ``GET /repos/{o}/{r}``, ``GET /repos/{o}/{r}/pulls`` (``state``, ``head``,
``base``, ``per_page``/``page`` with ``Link`` pagination) and ``POST /repos/{o}/{r}/pulls``
(201, or 422 "Validation Failed" with GitHub's ``errors`` list). ``Authorization: Bearer``
or ``token`` is checked (401 "Bad credentials"); read-only tokens get 403 on writes;
every answer carries ``x-ratelimit-*`` headers and an exhausted budget answers 403
"API rate limit exceeded".
"""

from __future__ import annotations

import hashlib
import itertools
import time
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer, bearer_token

DOCS = "https://docs.github.com/rest"


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response(
        {"message": message, "documentation_url": DOCS, **extra}, status=status
    )


class FakeGitHub(FakeServer):
    """In-memory GitHub: add repos and branches, then point a client at ``url``."""

    def __init__(
        self,
        *,
        tokens: tuple[str, ...] = ("ghs_test_token",),
        read_only_tokens: tuple[str, ...] = (),
        rate_limit: int = 5000,
    ) -> None:
        super().__init__()
        self.tokens = set(tokens) | set(read_only_tokens)
        self.read_only = set(read_only_tokens)
        self.rate_limit = rate_limit
        self.remaining: dict[str, int] = {}
        self.reset_at = int(time.time()) + 3600
        self.repos: dict[str, dict[str, Any]] = {}
        self.branches: dict[str, set[str]] = {}
        self.pulls: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(1_000_001)
        r = self.app.router
        r.add_get("/repos/{owner}/{repo}", self._get_repo)
        r.add_get("/repos/{owner}/{repo}/pulls", self._list_pulls)
        r.add_post("/repos/{owner}/{repo}/pulls", self._create_pull)

    # --- state ------------------------------------------------------------------------

    def add_repo(
        self,
        full_name: str,
        *,
        default_branch: str = "main",
        branches: tuple[str, ...] = (),
        private: bool = True,
    ) -> dict[str, Any]:
        """Create a repository with ``default_branch`` and extra ``branches``."""
        owner, name = full_name.split("/")
        repo = {
            "id": next(self._ids),
            "node_id": f"R_{name}",
            "name": name,
            "full_name": full_name,
            "private": private,
            "owner": {"login": owner, "id": next(self._ids), "type": "Organization"},
            "html_url": f"https://github.com/{full_name}",
            "clone_url": f"https://github.com/{full_name}.git",
            "default_branch": default_branch,
            "visibility": "private" if private else "public",
        }
        self.repos[full_name] = repo
        self.branches[full_name] = {default_branch, *branches}
        self.pulls[full_name] = []
        return repo

    def add_pull(self, full_name: str, *, head: str, base: str, title: str) -> dict[str, Any]:
        """Open a pull request directly (bypassing validation)."""
        return self._new_pull(full_name, head=head, base=base, title=title, body=None, draft=False)

    def _new_pull(
        self, full_name: str, *, head: str, base: str, title: str, body: str | None, draft: bool
    ) -> dict[str, Any]:
        repo = self.repos[full_name]
        owner = repo["owner"]["login"]
        number = len(self.pulls[full_name]) + 1
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

        def ref(branch: str) -> dict[str, Any]:
            sha = hashlib.sha1(f"{full_name}@{branch}".encode()).hexdigest()
            return {"label": f"{owner}:{branch}", "ref": branch, "sha": sha, "repo": repo}

        pull = {
            "url": f"https://api.github.com/repos/{full_name}/pulls/{number}",
            "id": next(self._ids),
            "node_id": f"PR_{number}",
            "html_url": f"https://github.com/{full_name}/pull/{number}",
            "number": number,
            "state": "open",
            "locked": False,
            "title": title,
            "user": {"login": "warren-bot[bot]", "id": 41898282, "type": "Bot"},
            "body": body,
            "created_at": now,
            "updated_at": now,
            "merged_at": None,
            "draft": draft,
            "head": ref(head),
            "base": ref(base),
        }
        self.pulls[full_name].append(pull)
        return pull

    # --- auth and limits ----------------------------------------------------------------

    def _headers(self, token: str | None) -> dict[str, str]:
        remaining = self.remaining.get(token or "", self.rate_limit)
        return {
            "x-ratelimit-limit": str(self.rate_limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(self.reset_at),
            "x-ratelimit-used": str(self.rate_limit - remaining),
            "x-ratelimit-resource": "core",
            "X-GitHub-Media-Type": "github.v3; format=json",
        }

    def _authorize(self, request: web.Request, *, write: bool) -> str | web.Response:
        token = bearer_token(request, allow_token_scheme=True)
        if token is None or token not in self.tokens:
            return _error(401, "Bad credentials")
        remaining = self.remaining.get(token, self.rate_limit)
        if remaining <= 0:
            resp = _error(403, "API rate limit exceeded for installation ID 1.")
            resp.headers.update(self._headers(token))
            return resp
        self.remaining[token] = remaining - 1
        if write and token in self.read_only:
            resp = _error(403, "Resource not accessible by integration")
            resp.headers.update(self._headers(token))
            return resp
        return token

    def _repo_or_404(self, request: web.Request) -> tuple[str, web.Response | None]:
        full = f"{request.match_info['owner']}/{request.match_info['repo']}"
        if full not in self.repos:
            return full, _error(404, "Not Found")
        return full, None

    # --- handlers -------------------------------------------------------------------------

    async def _get_repo(self, request: web.Request) -> web.Response:
        auth = self._authorize(request, write=False)
        if isinstance(auth, web.Response):
            return auth
        full, missing = self._repo_or_404(request)
        resp = missing or web.json_response(self.repos[full])
        resp.headers.update(self._headers(auth))
        return resp

    async def _list_pulls(self, request: web.Request) -> web.Response:
        auth = self._authorize(request, write=False)
        if isinstance(auth, web.Response):
            return auth
        full, missing = self._repo_or_404(request)
        if missing:
            missing.headers.update(self._headers(auth))
            return missing
        q = request.query
        state = q.get("state", "open")
        items = [
            p
            for p in self.pulls[full]
            if (state == "all" or p["state"] == state)
            and ("head" not in q or p["head"]["label"] == q["head"])
            and ("base" not in q or p["base"]["ref"] == q["base"])
        ]
        per_page = min(int(q.get("per_page", "30")), 100)
        page = max(int(q.get("page", "1")), 1)
        last = max((len(items) + per_page - 1) // per_page, 1)
        resp = web.json_response(items[(page - 1) * per_page : page * per_page])
        links = []
        base = request.url.with_query({**q, "per_page": str(per_page)})
        if page < last:
            links.append(f'<{base.update_query(page=str(page + 1))}>; rel="next"')
            links.append(f'<{base.update_query(page=str(last))}>; rel="last"')
        if page > 1:
            links.append(f'<{base.update_query(page=str(page - 1))}>; rel="prev"')
            links.append(f'<{base.update_query(page="1")}>; rel="first"')
        if links:
            resp.headers["Link"] = ", ".join(links)
        resp.headers.update(self._headers(auth))
        return resp

    async def _create_pull(self, request: web.Request) -> web.Response:
        auth = self._authorize(request, write=True)
        if isinstance(auth, web.Response):
            return auth
        full, missing = self._repo_or_404(request)
        if missing:
            return missing
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "Problems parsing JSON")
        resp = self._validate_and_create(full, body)
        resp.headers.update(self._headers(auth))
        return resp

    def _validate_and_create(self, full: str, body: dict[str, Any]) -> web.Response:
        missing = [f for f in ("title", "head", "base") if not body.get(f)]
        if missing:
            errors = [
                {"resource": "PullRequest", "field": f, "code": "missing_field"} for f in missing
            ]
            return _error(422, "Validation Failed", errors=errors)
        head = str(body["head"]).split(":")[-1]
        base = str(body["base"])
        invalid = [
            {"resource": "PullRequest", "field": field, "code": "invalid"}
            for field, branch in (("head", head), ("base", base))
            if branch not in self.branches[full]
        ]
        if invalid:
            return _error(422, "Validation Failed", errors=invalid)
        owner = self.repos[full]["owner"]["login"]
        for p in self.pulls[full]:
            if p["state"] == "open" and p["head"]["ref"] == head and p["base"]["ref"] == base:
                message = f"A pull request already exists for {owner}:{head}."
                errors = [{"resource": "PullRequest", "code": "custom", "message": message}]
                return _error(422, "Validation Failed", errors=errors)
        pull = self._new_pull(
            full,
            head=head,
            base=base,
            title=str(body["title"]),
            body=body.get("body"),
            draft=bool(body.get("draft", False)),
        )
        return web.json_response(pull, status=201)
