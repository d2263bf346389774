"""Instrument specs of the simulated symbols: tick and lot sizes, wire precision, market profile.

Prices are kept as integer ticks and sizes as integer lots, so a level is exact and its wire
string is made with integer arithmetic, the way the exchanges print them (Binance BTCUSDT:
tick 0.1 printed with 2 decimals, ``"63982.70"``; sizes with 3, ``"0.000"`` for a deletion).
OKX counts sizes in contracts of ``ctVal`` base units and prints every number without trailing
zeros (``"63920"``, ``"0.3"``): its specs carry ``ct_val`` and ``trimmed``.

The model counts coins; a venue may quote a unit of ``10**unit_exp`` coins (Binance and Bybit
``1000SHIBUSDT``: a price per 1,000 SHIB, sizes in thousands): only the wire strings differ.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

from detector.models import Exchange


@dataclass(slots=True)
class InstrumentSpec:
    """One exchange's contract for a symbol: tick, lot step and how the wire prints them."""

    tick_units: int  # tick size in units of 10**-price_dp
    price_dp: int
    step_units: int  # lot step in units of 10**-qty_dp
    qty_dp: int
    zero_qty: str  # how a deletion is written: Binance "0.000", Bybit and OKX "0"
    ct_val: float = 1.0  # base units per contract (OKX ctVal); 1 where sizes are base units
    trimmed: bool = False  # OKX: numbers without trailing zeros ("63920", "790.41")
    unit_exp: int = 0  # the venue quotes 10**unit_exp coins as one unit (1000SHIBUSDT: 3)
    _price_cache: dict[int, str] = field(default_factory=dict, repr=False)
    _qty_cache: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def tick(self) -> float:
        """One tick, in USDT a coin (the model's unit; the wire's when ``unit_exp`` is 0)."""
        return self.tick_units / float(10**self.price_dp)

    @property
    def unit(self) -> float:
        """Coins in the venue's quoted unit."""
        return float(10**self.unit_exp)

    @property
    def wire_price_dp(self) -> int:
        """Decimals of a price on the wire (a unit of 1,000 coins needs 3 fewer)."""
        return max(0, self.price_dp - self.unit_exp)

    @property
    def wire_qty_dp(self) -> int:
        """Decimals of a size on the wire (a unit of 1,000 coins needs 3 more)."""
        return self.qty_dp + self.unit_exp

    @property
    def step(self) -> float:
        """One lot in wire units (contracts on OKX, base units elsewhere)."""
        return self.step_units / float(10**self.qty_dp)

    @property
    def base_step(self) -> float:
        """One lot in base units: ``step`` times the contract value."""
        return self.step * self.ct_val

    def price_str(self, ticks: int) -> str:
        """The wire string of a price given in ticks."""
        text = self._price_cache.get(ticks)
        if text is None:
            text = _fixed(ticks * self.tick_units, self.price_dp - self.unit_exp)
            if self.trimmed:
                text = _trim(text)
            if len(self._price_cache) < 100_000:
                self._price_cache[ticks] = text
        return text

    def qty_str(self, lots: int) -> str:
        """The wire string of a size given in lots (0 is the exchange's deletion marker)."""
        text = self._qty_cache.get(lots)
        if text is None:
            text = _fixed(lots * self.step_units, self.wire_qty_dp) if lots else self.zero_qty
            if self.trimmed:
                text = _trim(text)
            if len(self._qty_cache) < 100_000:
                self._qty_cache[lots] = text
        return text

    def lots_for(self, base_qty: float) -> int:
        """Lots closest to ``base_qty`` units of the base asset (at least one lot)."""
        return max(1, round(base_qty / self.base_step))


def _trim(text: str) -> str:
    """``"63920.0"`` -> ``"63920"``, ``"0.30"`` -> ``"0.3"`` (text without a sign)."""
    if "." not in text:
        return text
    return text.rstrip("0").rstrip(".") or "0"


def _fixed(units: int, dp: int) -> str:
    """``units`` * 10**-dp printed with exactly ``dp`` decimals (units >= 0; none for dp <= 0)."""
    if dp <= 0:
        return str(units * 10**-dp)
    scale = 10**dp
    whole, frac = divmod(units, scale)
    return f"{whole}.{frac:0{dp}d}"


def format_decimal(value: float, dp: int) -> str:
    """A float printed with ``dp`` decimals (marks, indices, funding rates)."""
    return f"{value:.{dp}f}"


def format_trimmed(value: float, dp: int) -> str:
    """A float with at most ``dp`` decimals and no trailing zeros (Bybit ``"0.0001"``)."""
    text = f"{value:.{dp}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


@dataclass(frozen=True, slots=True)
class SymbolProfile:
    """How a symbol trades in the model: start price, volatility, sizes and every contract."""

    symbol: str
    start_price: float
    vol_per_sqrt_s: float  # fraction; 6e-5 = 0.006 % per sqrt(second)
    level_qty: float  # median size of a book level, base units
    trade_qty: float  # median size of a trade, base units
    open_interest: float  # base units, Bybit tickers
    volume_24h: float  # base units, Bybit tickers
    binance: InstrumentSpec
    bybit: InstrumentSpec
    okx: InstrumentSpec
    activity: float = 1.0  # share of the feeds' ticks with news: book pushes and trades
    listed_on: frozenset[Exchange] | None = None  # the venues that list it; None: every one

    def listed(self, exchange: Exchange) -> bool:
        """Whether ``exchange`` lists the symbol (its instrument list, streams and REST)."""
        return self.listed_on is None or exchange in self.listed_on

    def spec(self, exchange: Exchange) -> InstrumentSpec:
        if exchange is Exchange.BINANCE:
            return self.binance
        return self.bybit if exchange is Exchange.BYBIT else self.okx

    @property
    def stream_prefix(self) -> str:
        """Binance stream names use the lowercase symbol (``btcusdt@depth@100ms``)."""
        return self.symbol.lower()

    @property
    def base(self) -> str:
        """The base coin: ``BTC`` of ``BTCUSDT``."""
        return self.symbol.removesuffix("USDT")

    @property
    def inst_id(self) -> str:
        """The OKX instrument: ``BTC-USDT-SWAP`` (the USDT-margined perpetual)."""
        return okx_inst_id(self.symbol)


def _binance(tick_units: int, price_dp: int, qty_dp: int) -> InstrumentSpec:
    step_units = 1
    return InstrumentSpec(tick_units, price_dp, step_units, qty_dp, _fixed(0, qty_dp))


def _bybit(tick_units: int, price_dp: int, qty_dp: int) -> InstrumentSpec:
    return InstrumentSpec(tick_units, price_dp, 1, qty_dp, "0")


def _okx(tick_units: int, price_dp: int, ct_val: float) -> InstrumentSpec:
    # USDT swaps trade in lots of 0.01 contract (lotSz "0.01"), sizes printed trimmed.
    return InstrumentSpec(tick_units, price_dp, 1, 2, "0", ct_val=ct_val, trimmed=True)


def okx_inst_id(symbol: str) -> str:
    """``BTCUSDT`` -> ``BTC-USDT-SWAP``; OKX quotes the coin itself: ``1000SIM005USDT`` ->
    ``SIM005-USDT-SWAP`` (as OKX lists ``SHIB-USDT-SWAP`` beside Binance ``1000SHIBUSDT``)."""
    base = symbol.removesuffix("USDT")
    multiplied = MULTIPLIED.match(base)
    return f"{multiplied.group(1) if multiplied else base}-USDT-SWAP"


def _profiles() -> dict[str, SymbolProfile]:
    # Wire precision as in the 2026 frames: Binance BTCUSDT "63982.70"/"6.408", ETHUSDT
    # "1353.67"/"4.685", SOLUSDT 4 price decimals and whole-coin lots; Bybit BTCUSDT
    # "63982.70"/"0.001", ETHUSDT 2/2 decimals, SOLUSDT "120.640"/"1374.5"; OKX BTC-USDT-SWAP
    # tickSz 0.1, ctVal 0.01 BTC ("63921.5"/"790.41" contracts), ETH ctVal 0.1, SOL ctVal 1.
    return {
        "BTCUSDT": SymbolProfile(
            symbol="BTCUSDT",
            start_price=64_000.0,
            vol_per_sqrt_s=6e-5,
            level_qty=0.25,
            trade_qty=0.012,
            open_interest=57_798.137,
            volume_24h=61_874.639,
            binance=_binance(tick_units=10, price_dp=2, qty_dp=3),
            bybit=_bybit(tick_units=10, price_dp=2, qty_dp=3),
            okx=_okx(tick_units=1, price_dp=1, ct_val=0.01),
        ),
        "ETHUSDT": SymbolProfile(
            symbol="ETHUSDT",
            start_price=3_400.0,
            vol_per_sqrt_s=7e-5,
            level_qty=4.0,
            trade_qty=0.25,
            open_interest=1_052_113.52,
            volume_24h=912_447.31,
            binance=_binance(tick_units=1, price_dp=2, qty_dp=3),
            bybit=_bybit(tick_units=1, price_dp=2, qty_dp=2),
            okx=_okx(tick_units=1, price_dp=2, ct_val=0.1),
        ),
        "SOLUSDT": SymbolProfile(
            symbol="SOLUSDT",
            start_price=150.0,
            vol_per_sqrt_s=8e-5,
            level_qty=120.0,
            trade_qty=6.0,
            open_interest=8_413_552.7,
            volume_24h=13_529_011.4,
            binance=_binance(tick_units=100, price_dp=4, qty_dp=0),
            bybit=_bybit(tick_units=10, price_dp=3, qty_dp=1),
            okx=_okx(tick_units=1, price_dp=2, ct_val=1.0),
        ),
    }


SUPPORTED_SYMBOLS: tuple[str, ...] = tuple(_profiles())

GENERATED = re.compile(r"^(?:1000)?SIM(\d{3})USDT$")
"""The generated tail of the simulated market: ``SIM000USDT`` … ``SIM999USDT``; a few of them
quoted per 1,000 coins on Binance and Bybit (``1000SIM005USDT``)."""
MULTIPLIED = re.compile(r"^1000(SIM\d{3})$")

# What sets a tail coin apart, by its index (a few in every hundred, as in the real market):
MULTIPLIER_EVERY, MULTIPLIER_AT = 40, 5  # a coin of 1e-6.5 to 1e-4 USDT, quoted per 1,000 coins
COLLISION_AT = 17  # mod 100: Bybit's coin of that name is another coin, 100 times the price
ONE_VENUE_AT = {61: Exchange.BINANCE, 83: Exchange.BYBIT}  # mod 100: listed on that venue only


def _multiplied(index: int) -> bool:
    """Whether Binance and Bybit quote tail coin ``index`` per 1,000 coins."""
    return index % MULTIPLIER_EVERY == MULTIPLIER_AT


def tail_name(index: int) -> str:
    """The name of tail coin ``index``: ``SIM007USDT``, or ``1000SIM005USDT`` for a coin that
    Binance and Bybit quote per 1,000 coins."""
    return f"{'1000' if _multiplied(index) else ''}SIM{index:03d}USDT"


MAX_SYMBOLS = len(SUPPORTED_SYMBOLS) + 1000
"""The most symbols the simulator lists: its three majors and the generated tail."""


def market_symbols(count: int) -> list[str]:
    """The first ``count`` symbols of the simulated market: its majors, then the generated
    tail (``SIM000USDT``, ``SIM001USDT`` …); ValueError outside 1 to :data:`MAX_SYMBOLS`."""
    if not 1 <= count <= MAX_SYMBOLS:
        raise ValueError(f"the simulator lists 1 to {MAX_SYMBOLS} symbols, not {count}")
    majors = list(SUPPORTED_SYMBOLS[:count])
    return majors + [tail_name(i) for i in range(count - len(majors))]


def _generated(symbol: str, index: int) -> SymbolProfile:
    """A tail coin, the same for the same index: a price from 0.0001 to 1,000 USDT (log-uniform),
    a tick of about a basis point of it, lots of about 10 USDT, books of a few thousand USDT a
    level, a busier or quieter walk and feeds with news on 40 to 100 % of their ticks (the
    majors: every tick) — the precisions and the rates spread as the real tail's do.

    Set apart by index (:func:`tail_name`): a coin quoted per 1,000 (1e-6.5 to 1e-4 USDT a
    coin, like SHIB or PEPE; Binance and Bybit print 1,000 coins as a unit, OKX the coin with a
    ``ctVal`` of millions), a name Bybit gives another coin (100 times the price: a collision),
    and coins listed on one venue only."""
    rng = random.Random(f"simulated tail coin {index}")
    draw = rng.uniform(-4.0, 3.0)
    unit_exp = 3 if _multiplied(index) else 0
    if unit_exp:
        draw = -6.5 + (draw + 4.0) / 7.0 * 2.5
    price = 10.0**draw
    price_dp = max(0, -math.floor(math.log10(price * 1e-4)))
    lot_exp = math.floor(math.log10(10.0 / price))  # one lot worth 1 to 10 USDT
    qty_dp, step_units = (-lot_exp, 1) if lot_exp < 0 else (0, 10**lot_exp)
    level_usd = rng.uniform(1_000.0, 20_000.0)
    ct_val = 10.0 ** math.floor(math.log10(10.0 / price))  # OKX: a contract of ~1 to 10 USDT
    level_qty = level_usd / price
    bybit_exp = 2 if index % 100 == COLLISION_AT else unit_exp
    one_venue = ONE_VENUE_AT.get(index % 100)
    return SymbolProfile(
        symbol=symbol,
        start_price=price,
        vol_per_sqrt_s=rng.uniform(8e-5, 2.5e-4),
        level_qty=level_qty,
        trade_qty=level_qty / rng.uniform(8.0, 30.0),
        open_interest=level_qty * rng.uniform(500.0, 5_000.0),
        volume_24h=level_qty * rng.uniform(1_000.0, 20_000.0),
        binance=InstrumentSpec(
            1, price_dp, step_units, qty_dp, _fixed(0, qty_dp + unit_exp), unit_exp=unit_exp
        ),
        bybit=InstrumentSpec(1, price_dp, step_units, qty_dp, "0", unit_exp=bybit_exp),
        okx=_okx(tick_units=1, price_dp=price_dp, ct_val=ct_val),
        activity=rng.uniform(0.4, 1.0),
        listed_on=None if one_venue is None else frozenset({one_venue}),
    )


def profile(symbol: str) -> SymbolProfile:
    """A fresh profile (its specs hold per-model caches) for ``symbol``; ValueError if unknown."""
    known = _profiles()
    if symbol in known:
        return known[symbol]
    generated = GENERATED.match(symbol)
    if generated is not None and tail_name(int(generated.group(1))) == symbol:
        return _generated(symbol, int(generated.group(1)))
    names = ", ".join(SUPPORTED_SYMBOLS)
    raise ValueError(f"the simulator knows {names} and SIM000USDT to SIM999USDT; not {symbol!r}")
