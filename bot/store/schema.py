"""The SQLite schema of the bot's store, as ordered migrations (``PRAGMA user_version``).

Each migration moves the file from version ``n - 1`` to ``n`` inside one transaction; never edit
a released migration, append a new one. Times are integer milliseconds; JSON columns are checked
with ``json_valid``.
"""

from __future__ import annotations

SPREAD = "(({user} * 1640531527 + {item} * 1013904223) % 2147483648) * 1103515245 % 2147483648"
"""Two rounds of a multiplicative hash mod 2^31 (products stay within SQLite's 64 bits) of a user
and a signal (or broadcast). The rounds compose to one affine map, ``(a * user + b * item) mod
2^31``: every signal orders the users along the same cycle, each starting at another place, so
no user is always last."""

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: users and their subscriptions; what the detector emitted, for /stats.
    (
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            platform TEXT NOT NULL CHECK (platform IN ('telegram', 'discord')),
            chat_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            is_group INTEGER NOT NULL DEFAULT 0 CHECK (is_group IN (0, 1)),
            active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
            blocked_at INTEGER,
            muted_until_ms INTEGER,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL,
            preferences TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(preferences)),
            UNIQUE (platform, chat_id)
        )
        """,
        """
        CREATE TABLE subscriptions (
            user INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            symbol TEXT NOT NULL,
            threshold_pct REAL NOT NULL CHECK (threshold_pct > 0),
            min_strength TEXT NOT NULL CHECK (min_strength IN ('weak', 'moderate', 'strong')),
            types TEXT CHECK (types IS NULL OR json_valid(types)),
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL,
            PRIMARY KEY (user, symbol)
        )
        """,
        """
        CREATE TABLE signals (
            id INTEGER PRIMARY KEY,
            type TEXT NOT NULL,
            symbol TEXT NOT NULL,
            strength TEXT NOT NULL,
            confidence REAL NOT NULL,
            timestamp INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            key TEXT NOT NULL,
            net_pct REAL,
            details TEXT NOT NULL CHECK (json_valid(details)),
            received_ms INTEGER NOT NULL,
            dedup_key TEXT NOT NULL UNIQUE
        )
        """,
        "CREATE INDEX signals_by_time ON signals (timestamp)",
        "CREATE INDEX signals_by_symbol_time ON signals (symbol, timestamp)",
        "CREATE INDEX signals_by_key ON signals (key)",
        """
        CREATE TABLE opportunities (
            id TEXT PRIMARY KEY,
            symbol TEXT NOT NULL,
            direction TEXT NOT NULL,
            opened_ms INTEGER NOT NULL,
            closed_ms INTEGER,
            last_seen_ms INTEGER NOT NULL,
            duration_ms INTEGER NOT NULL,
            peak_net_pct REAL NOT NULL,
            peak_expected_profit REAL NOT NULL,
            peak_max_volume REAL NOT NULL,
            close_reason TEXT
        )
        """,
        "CREATE INDEX opportunities_by_open ON opportunities (opened_ms)",
    ),
    # 2: the outbox (deliveries), admin broadcasts, and the lease that keeps one sender running.
    (
        """
        CREATE TABLE broadcasts (
            id INTEGER PRIMARY KEY,
            text TEXT NOT NULL,
            sender TEXT NOT NULL,
            created_ms INTEGER NOT NULL
        )
        """,
        # One row per user and signal (or broadcast), integers only: routing one signal to
        # 10 000 users writes 10 000 of them in one transaction. A signal row is one piece of
        # news (its dedup_key is unique), so unique (signal, user) never queues the same news
        # twice for a user.
        """
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            user INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            signal INTEGER REFERENCES signals (id) ON DELETE CASCADE,
            broadcast INTEGER REFERENCES broadcasts (id) ON DELETE CASCADE,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sent', 'failed', 'expired', 'skipped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_ms INTEGER NOT NULL,
            last_error TEXT,
            message_id TEXT,
            silent INTEGER NOT NULL DEFAULT 0 CHECK (silent IN (0, 1)),
            created_ms INTEGER NOT NULL,
            sent_ms INTEGER,
            finished_ms INTEGER,
            CHECK ((signal IS NULL) <> (broadcast IS NULL)),
            UNIQUE (signal, user)
        )
        """,
        "CREATE INDEX deliveries_due ON deliveries (next_attempt_ms) WHERE status = 'pending'",
        "CREATE INDEX deliveries_finished ON deliveries (created_ms) WHERE status != 'pending'",
        "CREATE INDEX deliveries_by_user ON deliveries (user, created_ms)",
        "CREATE INDEX deliveries_by_broadcast ON deliveries (broadcast)"
        " WHERE broadcast IS NOT NULL",
        """
        CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            expires_ms INTEGER NOT NULL
        )
        """,
    ),
    # 3: edits of delivered arbitrage alerts once their opportunity closed. A row exists from
    # the first attempt on; an alert without one, about a closed opportunity, is due.
    (
        """
        CREATE TABLE edits (
            delivery INTEGER PRIMARY KEY REFERENCES deliveries (id) ON DELETE CASCADE,
            status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_ms INTEGER NOT NULL,
            last_error TEXT,
            finished_ms INTEGER
        )
        """,
        "CREATE INDEX edits_due ON edits (next_attempt_ms) WHERE status = 'pending'",
        "CREATE INDEX opportunities_by_close ON opportunities (closed_ms)"
        " WHERE closed_ms IS NOT NULL",
    ),
    # 4: the outbox's send order, kept on each row and indexed, so that the next due rows are
    # read off an index instead of sorting every pending row of every signal on each pass
    # (50 000 pending rows: 40 ms a pass before, under 1 ms after). order_key: 2 x class
    # (0 arbitrage, 1 other signals, 2 broadcasts) + silent; signal_ts: the signal's time
    # (newest first); spread: a hash of user and signal, a new order of users for each signal.
    (
        "ALTER TABLE deliveries ADD COLUMN platform TEXT NOT NULL DEFAULT 'telegram'",
        "ALTER TABLE deliveries ADD COLUMN order_key INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE deliveries ADD COLUMN signal_ts INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE deliveries ADD COLUMN spread INTEGER NOT NULL DEFAULT 0",
        "UPDATE deliveries SET platform = (SELECT platform FROM users WHERE id = deliveries.user),"
        " order_key = 2 * CASE WHEN signal IS NULL THEN 2"
        " WHEN (SELECT type FROM signals WHERE id = deliveries.signal) = 'arbitrage' THEN 0"
        " ELSE 1 END + silent,"
        " signal_ts = coalesce((SELECT timestamp FROM signals WHERE id = deliveries.signal),"
        " created_ms),"
        f" spread = {SPREAD.format(user='user', item='coalesce(signal, broadcast)')}",
        "CREATE INDEX deliveries_next ON deliveries"
        " (platform, order_key, signal_ts DESC, next_attempt_ms, spread) WHERE status = 'pending'",
        # Each pass expires the rows of the signals that expired since the last one.
        "CREATE INDEX signals_by_expiry ON signals (expires_at)",
    ),
    # 5: digests (/digest). A user on a digest has each signal that reaches them kept as a
    # digest item instead of a delivery; once their period ends the items become one message.
    # That message is a broadcasts row of kind 'digest' (its period in from_ms/to_ms) with one
    # delivery, so the outbox sends it like a broadcast: paced, retried, never expired.
    (
        "ALTER TABLE broadcasts ADD COLUMN kind TEXT NOT NULL DEFAULT 'broadcast'"
        " CHECK (kind IN ('broadcast', 'digest'))",
        "ALTER TABLE broadcasts ADD COLUMN from_ms INTEGER",
        "ALTER TABLE broadcasts ADD COLUMN to_ms INTEGER",
        """
        CREATE TABLE digest_items (
            user INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            signal INTEGER NOT NULL REFERENCES signals (id) ON DELETE CASCADE,
            created_ms INTEGER NOT NULL,
            digest INTEGER REFERENCES broadcasts (id) ON DELETE CASCADE,
            PRIMARY KEY (user, signal)
        )
        """,
        "CREATE INDEX digest_items_waiting ON digest_items (user, created_ms) WHERE digest IS NULL",
        "CREATE INDEX digest_items_by_digest ON digest_items (digest) WHERE digest IS NOT NULL",
    ),
    # No migration for the venues a user trades on (/venues, with OKX as the third venue): the
    # choice is one more key of users.preferences, ``"venues": ["binance", "okx"]``, beside
    # ``types`` and ``channel``, and a missing key means every venue. Every existing row thus
    # already reads as "all venues", so existing users keep getting what they got without a
    # backfill; and no query filters on it (routing filters in memory, see bot/routing.py), so
    # a column or an index would buy nothing. Venue names stay free text, checked by the
    # command layer, so that a fourth venue needs no schema change either.
    # 6: recipients routed a signal but not queued, because the platform could not send them
    # all before it expired (bot/routing.py: a burst's rows are capped at what each platform's
    # rate carries within each signal's life). Counted per signal for the admins' /status.
    ("ALTER TABLE signals ADD COLUMN unqueued INTEGER NOT NULL DEFAULT 0",),
)

SCHEMA_VERSION = len(MIGRATIONS)
"""The version a freshly migrated file has."""
