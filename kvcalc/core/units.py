"""Display units: bytes → "8.58 GiB" (2^30; "1.21 TiB" from 1024 GiB on), token counts → "128K". The site's
JS (site/format.js) mirrors these rules."""

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


#: Past 1024 GiB a size is printed in the largest of these units it reaches (2 decimals), so a huge
#: cache reads "1.21 TiB", not "1,234.50 GiB" (site/format.js fmtGiB: the same rule).
LARGE_UNITS = (("PiB", 1 << 50), ("TiB", 1 << 40))


def _half_up(n: int, unit: int, decimals: int) -> Decimal:
    """n / unit exactly, rounded half-up to ``decimals`` places."""
    with localcontext() as ctx:
        ctx.prec = 80
        return (Decimal(n) / Decimal(unit)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def fmt_gib(n: int) -> str:
    """``n`` bytes in GiB, rounded half-up (as JS toLocaleString does), e.g. "8.58 GiB"; from 1024 GiB
    on in TiB or PiB (2^40, 2^50), e.g. "1.21 TiB"."""
    for unit, size in LARGE_UNITS:
        if n >= size:
            return f"{_half_up(n, size, 2):,f} {unit}"
    return f"{_half_up(n, GIB, gib_decimals(n)):,f} GiB"


def fmt_int(n: int) -> str:
    """Thousands-separated integer: 70272 → "70,272"."""
    return f"{n:,}"


def fmt_tokens(n: int) -> str:
    """Token counts the way people say them: 131072 → "128K", 1048576 → "1M", 5000 → "5,000"; a round
    thousand stays as typed (128000 → "128,000", not "125K": K is 1024)."""
    if n % 1000 == 0:
        return f"{n:,}"
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
