"""quotes: a tiny web API, packaged as a zipapp by the build stage."""

import json
import pkgutil


def load_quotes() -> list[str]:
    """The quotes shipped with the package (works from a folder and from a .pyz)."""
    data = pkgutil.get_data(__name__, "quotes.json")
    if data is None:
        raise RuntimeError("quotes.json is missing from the package")
    quotes = json.loads(data)
    if not isinstance(quotes, list) or not all(isinstance(q, str) for q in quotes):
        raise ValueError("quotes.json must be a list of strings")
    return quotes
