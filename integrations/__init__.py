"""Adapters to the outside world for triggers and notifications.

Webhook signature checks (:mod:`integrations.signatures`), trigger providers that turn
deliveries and polls into :class:`schemas.triggers.TriggerContext` (:mod:`integrations.registry`),
and HTTP clients for GitHub, Linear, Gmail and Slack. Imports only :mod:`schemas`.
"""
