"""Display units: bytes → "8.58 GiB" (2^30), token counts → "128K". The site's JS mirrors these rules."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

GIB = 1 << 30


def gib_decimals(n: int) -> int:
    """Decimals shown for ``n`` bytes in GiB: 2, or 3 significant digits below 0.01 GiB."""
    if n <= 0 or n * 100 >= GIB:
        return 2
    k = 0
    while n * 10 ** (k + 3) < GIB:
        k += 1
    return k + 5


def fmt_gib(n: int) -> str:
    """``n`` bytes in GiB, rounded half-up (as JS toLocaleString does), e.g. "8.58 GiB"."""
    d = gib_decimals(n)
    with localcontext() as ctx:
        ctx.prec = 80
        value = (Decimal(n) / Decimal(GIB)).quantize(Decimal(1).scaleb(-d), rounding=ROUND_HALF_UP)
    return f"{value:,f} GiB"


def fmt_int(n: int) -> str:
    """Thousands-separated integer: 70272 → "70,272"."""
    return f"{n:,}"


def fmt_tokens(n: int) -> str:
    """Token counts the way people say them: 131072 → "128K", 1048576 → "1M", 5000 → "5,000"."""
    for unit, size in (("M", 1 << 20), ("K", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size:,}{unit}"
    return f"{n:,}"


def fmt_token_bytes(short: int, long: int) -> str:
    """Bytes one more token adds: "131,072", or "131,072 within the window, 0 beyond" when sliding
    windows (or chunks) stop some layers growing — never a bare 0 for a model that does cache tokens."""
    if short == long:
        return fmt_int(long)
    return f"{fmt_int(short)} within the window, {fmt_int(long)} beyond"
