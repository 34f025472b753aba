"""Ray Serve deployments and the app builder.

``build_app(settings)`` returns the Serve application: one FastAPI ingress deployment
(REST API, WebSockets, webhooks, metrics, browser page). Replicas read their settings
from the ``WARREN_*`` variables passed in their runtime environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ray import serve
from ray.serve import Application

from core.settings import ENV_PREFIX, Settings, env_name


def _build_asgi_app() -> object:
    # Imported in the replica, so the driver never opens connections.
    from api.app import create_app

    return create_app()


@serve.ingress(_build_asgi_app)
class Ingress:
    """The HTTP/WebSocket ingress; stateless, anything live is asked of actors by name."""


def settings_env(settings: Settings) -> dict[str, str]:
    """``settings`` as the ``WARREN_*`` variables that reproduce it in a replica."""
    import msgspec

    env: dict[str, str] = {}
    for key, value in msgspec.structs.asdict(settings).items():
        if isinstance(value, tuple):
            env[env_name(key)] = ",".join(value)
        elif isinstance(value, bool):
            env[env_name(key)] = "true" if value else "false"
        else:
            env[env_name(key)] = str(value)
    return env


def build_app(settings: Settings, extra_env: Mapping[str, str] | None = None) -> Application:
    """The Serve application for ``settings``, sized per PLATFORM-NOTES (WebSockets hold slots)."""
    env = settings_env(settings)
    env.update({k: v for k, v in (extra_env or {}).items() if not k.startswith(ENV_PREFIX)})
    deployment = serve.deployment(
        name="warren-api",
        num_replicas=settings.serve_replicas,
        max_ongoing_requests=settings.serve_max_ongoing_requests,
        ray_actor_options={"num_cpus": 0, "runtime_env": {"env_vars": env}},
        logging_config={"enable_access_log": False},
    )(Ingress)
    app: Application = deployment.bind()
    return app


def app_from_env(args: dict[str, str]) -> Application:
    """Serve application builder for ``import_path: serve_app:app_from_env`` (KubeRay, serve run).

    Settings come from the ``WARREN_*`` environment of the process that builds the app; ``args``
    (the config's ``args:``) override them by field name, e.g. ``{"serve_replicas": "4"}``.
    """
    from core.settings import load_settings

    environ = dict(os.environ)
    environ.update({env_name(key): str(value) for key, value in args.items()})
    return build_app(load_settings(environ))
