"""The session actor and its parts: one Ray actor per live session (see :mod:`.actor`).

:mod:`.state` owns the session's life (states, transitions, lifecycle events); the other
modules do one concern each and ask it to transition. The ingress reaches this package
only through :mod:`actors.session_client`.
"""
