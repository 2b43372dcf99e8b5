"""The one exception bad input raises."""


class KVCalcError(ValueError):
    """Bad input: the message names the offending field."""
