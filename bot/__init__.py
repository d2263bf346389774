"""arbwatch's bot: the detector's signals to subscribers on Telegram and Discord, one process.

Two flows. Signal → subscribers → deliveries → platform message: ``routing`` (who receives a
signal), ``store`` (queues it durably), ``outbox`` with ``pacing`` (sends within each platform's
limits), ``platforms`` (the chat libraries). Chat text → command → store → reply: ``commands``,
in words from ``messages``. ``app`` wires them with the detector; ``cli`` is ``arbwatch``.
"""
