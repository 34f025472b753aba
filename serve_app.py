"""Ray Serve deployments and the app builder.

``build_app(settings)`` returns the Serve application: one FastAPI ingress deployment
(REST API, WebSockets, webhooks, metrics, browser page). Replicas read their settings from
``WARREN_*`` variables: the non-secret ones arrive in the deployment's ``runtime_env``; the
secrets and the server URLs (:data:`core.settings.ENVIRONMENT_ONLY_FIELDS`) never do, since
Ray stores and shows a runtime_env: replicas read them from the environment of their Ray
node (a Kubernetes Secret on KubeRay, the stack runner's environment locally).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ray import serve
from ray.serve import Application

from core.settings import ENV_PREFIX, ENVIRONMENT_ONLY_FIELDS, Settings, env_name


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


def secret_env(settings: Settings) -> dict[str, str]:
    """The ``WARREN_*`` variables a Ray node's environment must hold for replicas to start:
    the secrets and server URLs that :func:`build_app` keeps out of the runtime_env."""
    names = {env_name(field) for field in ENVIRONMENT_ONLY_FIELDS}
    return {k: v for k, v in settings_env(settings).items() if k in names}


def runtime_env_vars(settings: Settings) -> dict[str, str]:
    """The ``WARREN_*`` variables passed in the ingress's ``runtime_env``: no secrets."""
    secret = secret_env(settings)
    return {k: v for k, v in settings_env(settings).items() if k not in secret}


def replica_options(settings: Settings) -> dict[str, object]:
    """How many ingress replicas: fixed, or Serve autoscaling between the configured bounds.

    Autoscaling targets half of ``max_ongoing_requests`` per replica, since every open
    WebSocket holds one of those slots (PLATFORM-NOTES).
    """
    if not settings.serve_max_replicas:
        return {"num_replicas": settings.serve_replicas}
    return {
        "autoscaling_config": {
            "min_replicas": settings.serve_min_replicas,
            "initial_replicas": max(settings.serve_min_replicas, 1),
            "max_replicas": settings.serve_max_replicas,
            "target_ongoing_requests": max(1, settings.serve_max_ongoing_requests // 2),
        }
    }


def build_app(settings: Settings, extra_env: Mapping[str, str] | None = None) -> Application:
    """The Serve application for ``settings``, sized per PLATFORM-NOTES (WebSockets hold slots)."""
    env = runtime_env_vars(settings)
    env.update({k: v for k, v in (extra_env or {}).items() if not k.startswith(ENV_PREFIX)})
    deployment = serve.deployment(
        name="warren-api",
        max_ongoing_requests=settings.serve_max_ongoing_requests,
        ray_actor_options={"num_cpus": 0, "runtime_env": {"env_vars": env}},
        logging_config={"enable_access_log": False},
        **replica_options(settings),  # type: ignore[arg-type]
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
