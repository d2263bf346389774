"""The bot's durable state in one SQLite file, and the only code in ``bot`` that writes SQL.

``Store`` is the face (users and subscriptions) with its parts beside it: ``history`` (signals,
opportunities), ``deliveries`` (the outbox), ``edits`` (closing edits), ``leases`` and
``retention`` (pruning); ``lock`` keeps one process per file; ``models`` holds the typed values
they return; ``database`` and ``schema`` the file and its migrations.
It imports only ``bot.errors``, ``bot.messages`` (time units) and the detector's types.
Import from here, not from the modules behind it.
"""

from bot.store.digests import DIGEST_STEP_MS
from bot.store.lock import InstanceLock
from bot.store.models import (
    ALL_SYMBOLS,
    DeliveryPlan,
    DeliveryStatus,
    Digest,
    DueDelivery,
    DueEdit,
    LedgerRow,
    OpportunityRow,
    OpportunityStats,
    Platform,
    Pruned,
    RecentSend,
    SentMessage,
    Subscribed,
    Subscriber,
    Subscription,
    User,
    UserCounts,
    net_profit_pct,
    news_key,
)
from bot.store.retention import RETENTION_MS
from bot.store.store import Store

__all__ = [
    "ALL_SYMBOLS",
    "DIGEST_STEP_MS",
    "RETENTION_MS",
    "DeliveryPlan",
    "DeliveryStatus",
    "Digest",
    "DueDelivery",
    "DueEdit",
    "InstanceLock",
    "LedgerRow",
    "OpportunityRow",
    "OpportunityStats",
    "Platform",
    "Pruned",
    "RecentSend",
    "SentMessage",
    "Store",
    "Subscribed",
    "Subscriber",
    "Subscription",
    "User",
    "UserCounts",
    "net_profit_pct",
    "news_key",
]
