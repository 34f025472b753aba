"""What a store query runs on."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool
"""Anything that runs a query: a connection (inside a transaction) or the pool."""
